//! The HTTP API against a real server: runs, persistent sandboxes, files,
//! streaming, errors, status and metrics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use base64::Engine;
use common::{argv, Server};
use superserver_client::{ClientError, FileContent};
use superserver_wire::{CreateSandboxRequest, ExecRequest, Limits, RunAs, RunRequest, SandboxState, StreamEvent};

const B64: base64::engine::general_purpose::GeneralPurpose = base64::engine::general_purpose::STANDARD;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_reports_output_exit_code_and_resources() {
    let s = Server::start().await;
    let r = s.sh("echo out; echo err >&2; exit 3").await;
    assert_eq!(r.exit_code, Some(3));
    assert_eq!(r.stdout, "out\n");
    assert_eq!(r.stderr, "err\n");
    assert!(r.sandbox_id.starts_with("sb_") && r.execution_id.starts_with("ex_"));
    assert!(!r.timed_out && !r.oom_killed && r.signal.is_none());
    assert!(r.duration_ms > 0.0);
    assert!(r.peak_memory_bytes > 0);
    // Every run gets a new sandbox.
    let r2 = s.run(&["true"]).await;
    assert_ne!(r.sandbox_id, r2.sandbox_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_takes_stdin_env_cwd_files_and_root() {
    let s = Server::start().await;
    let mut env = BTreeMap::new();
    env.insert("GREETING".to_string(), "hello".to_string());
    let r = s
        .run_req(RunRequest {
            command: argv(&["sh", "-c", "read x; echo \"$GREETING $x $(pwd) $(cat data/in.txt) $(id -u)\""]),
            env,
            stdin: Some("world\n".into()),
            cwd: Some("/workspace".into()),
            files: vec![superserver_wire::FileUpload {
                path: "data/in.txt".into(),
                content_base64: B64.encode("file-content"),
                mode: None,
            }],
            ..Default::default()
        })
        .await;
    assert_eq!(r.stdout, "hello world /workspace file-content 1000\n", "{r:?}");
    let r = s.run_req(RunRequest { command: argv(&["id", "-u"]), user: Some(RunAs::Root), ..Default::default() }).await;
    assert_eq!(r.stdout, "0\n");
    let r = s
        .run_req(RunRequest {
            command: argv(&["cat"]),
            stdin_base64: Some(B64.encode([0u8, 255, 1])),
            ..Default::default()
        })
        .await;
    assert_eq!(B64.decode(r.stdout_base64.unwrap()).unwrap(), vec![0u8, 255, 1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_executable_exits_127_with_a_message() {
    let s = Server::start().await;
    let r = s.run(&["definitely-not-a-program"]).await;
    assert_eq!(r.exit_code, Some(127));
    assert!(r.error.as_deref().unwrap().contains("not found"), "{r:?}");
    let r = s.run(&["/workspace"]).await;
    assert_eq!(r.exit_code, Some(126), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_delivers_output_before_the_result() {
    let s = Server::start().await;
    let mut events = Vec::new();
    let req = RunRequest { command: argv(&["sh", "-c", "echo one; sleep 0.3; echo two >&2"]), ..Default::default() };
    let r = s.client.run_stream(&req, |e| events.push(e.clone())).await.unwrap();
    assert_eq!(r.exit_code, Some(0));
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| match e {
            StreamEvent::Stdout { .. } => "stdout",
            StreamEvent::Stderr { .. } => "stderr",
            StreamEvent::Result(_) => "result",
            StreamEvent::Error { .. } => "error",
        })
        .collect();
    assert_eq!(kinds, ["stdout", "stderr", "result"]);
    // Server-sent events too.
    let body = s
        .http()
        .post(format!("{}/v1/run", s.url))
        .header("accept", "text/event-stream")
        .json(&RunRequest { command: argv(&["echo", "sse"]), ..Default::default() })
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("event: stdout\ndata: {\"type\":\"stdout\",\"data\":\"sse\\n\"}"), "{body}");
    assert!(body.contains("event: result\n"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_sandbox_keeps_state_and_files() {
    // No pool, so every sandbox process on the host belongs to this test.
    let s = Server::start_with("[pool]\nsize = 0").await;
    let mut env = BTreeMap::new();
    env.insert("SB".to_string(), "yes".to_string());
    let info = s
        .client
        .create_sandbox(&CreateSandboxRequest { env, ttl_seconds: Some(600), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(info.state, SandboxState::Running);
    let id = info.id.clone();
    assert_eq!(s.exec(&id, &["sh", "-c", "echo $SB > note.txt"]).await.exit_code, Some(0));
    assert_eq!(s.exec(&id, &["cat", "note.txt"]).await.stdout, "yes\n");
    // Files API.
    s.client.put_file(&id, "dir/sub/up.bin", vec![1u8, 2, 3], Some(0o600)).await.unwrap();
    let r = s.exec(&id, &["stat", "-c", "%a %U %s", "dir/sub/up.bin"]).await;
    assert_eq!(r.stdout, "600 sandbox 3\n");
    match s.client.get_file(&id, "/workspace/note.txt").await.unwrap() {
        FileContent::File(b) => assert_eq!(&b[..], b"yes\n"),
        other => panic!("{other:?}"),
    }
    let list = s.client.list_files(&id, "dir").await.unwrap();
    assert_eq!(list.entries.len(), 1);
    assert_eq!(list.entries[0].name, "sub");
    assert_eq!(list.entries[0].kind, "dir");
    let listed = s.client.list_sandboxes(false).await.unwrap();
    assert!(listed.sandboxes.iter().any(|x| x.id == id));
    let got = s.client.get_sandbox(&id).await.unwrap();
    assert_eq!(got.exec_count, 3);
    // Delete: gone from the running list, state recorded, further use refused.
    let del = s.client.delete_sandbox(&id).await.unwrap();
    assert_eq!(del.state, SandboxState::Destroyed);
    let err = s.client.exec(&id, &ExecRequest { command: argv(&["true"]), ..Default::default() }).await.unwrap_err();
    assert_eq!(err.code(), Some("sandbox_not_running"), "{err}");
    s.assert_no_sandbox_leftovers(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_api_refuses_traversal() {
    let s = Server::start().await;
    let id = s.client.create_sandbox(&CreateSandboxRequest::default()).await.unwrap().id;
    s.exec(&id, &["ln", "-s", "/etc", "/workspace/etc-link"]).await;
    s.exec(&id, &["ln", "-s", "../../etc/passwd", "/workspace/rel-link"]).await;
    for path in
        ["../etc/passwd", "/etc/passwd", "etc-link/passwd", "rel-link", "/proc/1/environ", "/workspace/../etc/hosts"]
    {
        let err = s.client.get_file(&id, path).await.unwrap_err();
        assert!(matches!(err.code(), Some("path_not_allowed")), "GET {path} must be refused, got {err}");
        let err = s.client.put_file(&id, path, b"x".to_vec(), None).await.unwrap_err();
        assert!(matches!(err.code(), Some("path_not_allowed")), "PUT {path} must be refused, got {err}");
    }
    let err = s.client.get_file(&id, "nope.txt").await.unwrap_err();
    assert_eq!(err.code(), Some("file_not_found"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_clear_errors_and_the_server_stays_up() {
    let s = Server::start().await;
    let http = s.http();
    let post = |body: &'static str| {
        http.post(format!("{}/v1/run", s.url)).header("content-type", "application/json").body(body).send()
    };
    let cases: &[(&str, u16, &str)] = &[
        (r#"{"command":[]}"#, 400, "non-empty"),
        (r#"{"command":["true"],"bogus":1}"#, 400, "bogus"),
        (r#"{"command":"echo hi"}"#, 400, "invalid type"),
        (r#"not json"#, 400, "invalid JSON"),
        (r#"{"command":["true"],"timeout_ms":0}"#, 422, "timeout_ms"),
        (r#"{"command":["true"],"limits":{"memory_mb":99999999}}"#, 422, "memory_mb"),
        (r#"{"command":["true"],"image":"docker:alpine"}"#, 400, "unknown image"),
        (r#"{"command":["true"],"image":"dir:relative"}"#, 400, "absolute"),
        (r#"{"command":["true"],"env":{"A=B":"c"}}"#, 400, "A=B"),
    ];
    for (body, status, needle) in cases {
        let r = post(body).await.unwrap();
        assert_eq!(r.status().as_u16(), *status, "{body}");
        let v: serde_json::Value = r.json().await.unwrap();
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(v["error"]["code"].is_string());
        assert!(msg.contains(needle), "{body}: {msg}");
    }
    let r = http.get(format!("{}/v1/nope", s.url)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let r = http.delete(format!("{}/v1/run", s.url)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 405);
    let err = s.client.get_sandbox("sb_doesnotexist").await.unwrap_err();
    assert!(matches!(err, ClientError::Api { status: 404, .. }), "{err}");
    // Oversized body.
    let big = vec![b'a'; 70 << 20];
    let r = http.post(format!("{}/v1/run", s.url)).header("content-type", "application/json").body(big).send().await;
    if let Ok(r) = r {
        assert_eq!(r.status().as_u16(), 413);
    }
    // Still answering.
    assert_eq!(s.run(&["echo", "alive"]).await.stdout, "alive\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_metrics_and_openapi() {
    let s = Server::start().await;
    s.run(&["true"]).await;
    let st = s.client.status().await.unwrap();
    assert_eq!(st.backends[0].name, "native");
    assert!(st.backends[0].available);
    assert!(st.pool.hits + st.pool.misses >= 1);
    assert!(st.executions_total >= 1);
    let http = s.http();
    let m = http.get(format!("{}/metrics", s.url)).send().await.unwrap().text().await.unwrap();
    for name in [
        "superserver_pool_ready",
        "superserver_pool_hits_total",
        "superserver_runs_total 1",
        "superserver_sandbox_create_seconds_mean",
    ] {
        assert!(m.contains(name), "missing {name} in\n{m}");
    }
    let doc: serde_json::Value =
        http.get(format!("{}/v1/openapi.json", s.url)).send().await.unwrap().json().await.unwrap();
    for path in ["/v1/run", "/v1/sandboxes", "/v1/sandboxes/{id}/exec", "/v1/sandboxes/{id}/files", "/v1/status"] {
        assert!(doc["paths"][path].is_object(), "openapi lacks {path}");
    }
    assert!(doc["components"]["schemas"]["RunRequest"].is_object());
    let _ = Limits::default();
}

/// The server turns the host's cgroup2 `favordynmods` on, so that placing a
/// sandbox in its cgroup does not wait for an RCU grace period, and keeps
/// the root's other options; the status says which way it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cgroup_migrations_are_made_fast() {
    fn cgroup2_options() -> Option<String> {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        info.lines()
            .filter_map(|l| l.split_once(" - ").map(|(_, r)| r.to_string()))
            .find(|r| r.starts_with("cgroup2 "))
            .and_then(|r| r.split(' ').nth(2).map(str::to_string))
    }
    let before = cgroup2_options();
    let s = Server::start().await;
    let st = s.client.status().await.unwrap();
    let said = st.backends[0].features.get("cgroup_migrations").cloned().unwrap_or_default();
    let supported = std::fs::read_to_string("/sys/kernel/cgroup/features")
        .is_ok_and(|f| f.lines().any(|l| l.trim() == "favordynmods"));
    match (before, supported) {
        (Some(before), true) => {
            let after = cgroup2_options().unwrap();
            assert_eq!(said, "fast (cgroup2 favordynmods)", "cgroup2 options now: {after}");
            assert!(after.split(',').any(|o| o == "favordynmods"), "{after}");
            for o in before.split(',') {
                assert!(
                    after.split(',').any(|a| a == o),
                    "option {o} of the cgroup2 root was lost: {before} -> {after}"
                );
            }
        }
        _ => assert!(said.starts_with("slow: "), "{said}"),
    }
    assert_eq!(s.run(&["true"]).await.exit_code, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_expiry_destroys_the_sandbox() {
    let s = Server::start_with("[pool]\nsize = 0").await;
    let id =
        s.client.create_sandbox(&CreateSandboxRequest { ttl_seconds: Some(1), ..Default::default() }).await.unwrap().id;
    s.exec(&id, &["sh", "-c", "sleep 1000 & echo started"]).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let info = s.client.get_sandbox(&id).await.unwrap();
        if info.state == SandboxState::Expired {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "sandbox did not expire: {info:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    s.assert_no_sandbox_leftovers(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_timeout_kills_its_own_tree_only() {
    let s = Server::start().await;
    let id = s.client.create_sandbox(&CreateSandboxRequest::default()).await.unwrap().id;
    // A daemon left by an earlier command must survive a later command's timeout.
    s.exec(&id, &["sh", "-c", "setsid sleep 1001 >/dev/null 2>&1 &"]).await;
    let slow = {
        let client = s.client.clone();
        let id = id.clone();
        tokio::spawn(async move {
            let req = ExecRequest { command: argv(&["sh", "-c", "sleep 1.5; echo survived"]), ..Default::default() };
            client.exec(&id, &req).await.unwrap()
        })
    };
    let req = ExecRequest {
        command: argv(&[
            "sh",
            "-c",
            "setsid sleep 1002 >/dev/null 2>&1 & nohup sleep 1003 >/dev/null 2>&1 & sleep 1004",
        ]),
        timeout_ms: Some(500),
        ..Default::default()
    };
    let r = s.client.exec(&id, &req).await.unwrap();
    assert!(r.timed_out, "{r:?}");
    let other = slow.await.unwrap();
    assert_eq!(other.stdout, "survived\n", "a concurrent command must not be killed: {other:?}");
    let ps = s.exec(&id, &["ps", "-eo", "args"]).await.stdout;
    assert!(ps.contains("sleep 1001"), "{ps}");
    for gone in ["sleep 1002", "sleep 1003", "sleep 1004"] {
        assert!(!ps.contains(gone), "{gone} survived the timeout:\n{ps}");
    }
}
