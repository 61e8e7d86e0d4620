//! The client against canned HTTP answers from a socket on loopback: chunked
//! NDJSON streams, error bodies, file bodies and a refused connection. Tests
//! against the real server live with the server.

use std::time::Duration;

use superserver_client::{Client, ClientError, FileContent};
use superserver_wire::{ExecRequest, RunRequest, StreamEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Serves one connection: reads one request, writes `parts` with a pause
/// between them, closes. Yields the request as text.
async fn serve_once(parts: Vec<Vec<u8>>) -> (String, JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let addr = listener.local_addr().expect("bound address");
    let url = format!("http://{addr}");
    let task = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.expect("accept");
        let mut req = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = sock.read(&mut buf).await.expect("read request");
            assert!(n > 0, "client closed before sending a request");
            req.extend_from_slice(&buf[..n]);
            if let Some(end) = find(&req, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&req[..end]).to_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse::<usize>().expect("content-length"));
                if req.len() >= end + 4 + len {
                    break;
                }
            }
        }
        for part in parts {
            sock.write_all(&part).await.expect("write answer");
            sock.flush().await.expect("flush answer");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        sock.shutdown().await.expect("close");
        String::from_utf8_lossy(&req).into_owned()
    });
    (url, task)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn response(status: &str, ctype: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

fn chunk(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

#[tokio::test]
async fn refused_connection_says_how_to_start_the_server() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let err = Client::new(&url).unwrap().status().await.unwrap_err();
    assert!(matches!(err, ClientError::Connect { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("superserver serve"), "{text}");
    assert!(text.contains("SUPERSERVER_URL"), "{text}");
    assert!(text.contains(&url), "{text}");
}

#[tokio::test]
async fn streamed_run_over_chunked_encoding() {
    let result = r#"{"type":"result","execution_id":"ex_1","sandbox_id":"sb_1","exit_code":0,"signal":null,"stdout":"a\nb\n","stderr":"","stdout_truncated":false,"stderr_truncated":false,"stdout_bytes":4,"stderr_bytes":0,"timed_out":false,"oom_killed":false,"duration_ms":3.5,"cpu_ms":1.0,"peak_memory_bytes":4096}"#;
    let (head, tail) = result.split_at(40);
    let parts = vec![
        b"HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ntransfer-encoding: chunked\r\n\r\n".to_vec(),
        chunk(b"{\"type\":\"stdout\",\"data\":\"a\\n\"}\n{\"type\":\"std"),
        chunk(b"out\",\"data\":\"b\\n\"}\n"),
        chunk(head.as_bytes()),
        chunk(format!("{tail}\n").as_bytes()),
        b"0\r\n\r\n".to_vec(),
    ];
    let (url, server) = serve_once(parts).await;
    let client = Client::new(&url).unwrap();
    let req = RunRequest { command: vec!["sh".into(), "-c".into(), "echo a; echo b".into()], ..Default::default() };
    let mut seen = Vec::new();
    let res = client.run_stream(&req, |ev| seen.push(ev.clone())).await.unwrap();
    assert_eq!(res.exit_code, Some(0));
    assert_eq!(res.stdout, "a\nb\n");
    assert_eq!(&seen[..2], &[StreamEvent::Stdout { data: "a\n".into() }, StreamEvent::Stdout { data: "b\n".into() }]);
    assert_eq!(seen.len(), 3);

    let sent = server.await.unwrap();
    assert!(sent.starts_with("POST /v1/run HTTP/1.1\r\n"), "{sent}");
    assert!(sent.to_lowercase().contains("accept: application/x-ndjson"), "{sent}");
    assert!(sent.contains(r#""command":["sh","-c","echo a; echo b"]"#), "{sent}");
}

#[tokio::test]
async fn error_body_becomes_api_error() {
    let body = br#"{"error":{"code":"sandbox_not_found","message":"no sandbox sb_x"}}"#;
    let (url, server) = serve_once(vec![response("404 Not Found", "application/json", body)]).await;
    let err = Client::new(&url).unwrap().exec("sb_x", &ExecRequest::default()).await.unwrap_err();
    match err {
        ClientError::Api { status, code, message } => {
            assert_eq!((status, code.as_str()), (404, "sandbox_not_found"));
            assert_eq!(message, "no sandbox sb_x");
        }
        other => panic!("expected Api, got {other:?}"),
    }
    let sent = server.await.unwrap();
    assert!(sent.starts_with("POST /v1/sandboxes/sb_x/exec "), "{sent}");
}

#[tokio::test]
async fn file_bodies_and_listings() {
    let (url, server) = serve_once(vec![response("200 OK", "application/octet-stream", b"\x00\xffraw")]).await;
    let got = Client::new(&url).unwrap().get_file("sb_1", "out dir/a&b.bin").await.unwrap();
    assert_eq!(got, FileContent::File(bytes::Bytes::from_static(b"\x00\xffraw")));
    let sent = server.await.unwrap();
    assert!(sent.starts_with("GET /v1/sandboxes/sb_1/files?path=out+dir%2Fa%26b.bin "), "{sent}");

    let listing =
        br#"{"path":"/workspace","entries":[{"name":"a","kind":"file","size":1,"mode":420,"modified_ms":0}]}"#;
    let (url, _server) = serve_once(vec![response("200 OK", "application/json; charset=utf-8", listing)]).await;
    let got = Client::new(&url).unwrap().get_file("sb_1", "/workspace").await.unwrap();
    let FileContent::Dir(list) = got else {
        panic!("expected a listing, got {got:?}");
    };
    assert_eq!(list.entries[0].name, "a");
}

#[tokio::test]
async fn put_file_sends_octal_mode() {
    let (url, server) =
        serve_once(vec![response("201 Created", "application/json", br#"{"path":"/workspace/run.sh","size":9}"#)])
            .await;
    let written = Client::new(&url).unwrap().put_file("sb_1", "run.sh", &b"#!/bin/sh"[..], Some(0o755)).await.unwrap();
    assert_eq!(written.size, 9);
    let sent = server.await.unwrap();
    assert!(sent.starts_with("PUT /v1/sandboxes/sb_1/files?path=run.sh&mode=755 "), "{sent}");
    assert!(sent.ends_with("\r\n\r\n#!/bin/sh"), "{sent}");
}
