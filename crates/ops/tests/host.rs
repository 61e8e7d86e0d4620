//! Discovery of a real host process: `python3 -m http.server` on loopback,
//! with a connection to it held open by this test.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use superserver_ops::discover::scan_host;
use superserver_ops::procnet::SocketState;
use superserver_ops::{discover, EdgeKind, Options, ServiceKind};

/// `python3 -m http.server` on a free loopback port, killed on drop.
struct HttpServer {
    child: Child,
    port: u16,
}

impl HttpServer {
    fn start() -> Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let dir = std::env::temp_dir();
        let child = Command::new("python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1", &port.to_string()])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("python3 must be on PATH")?;
        let server = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("python3 -m http.server did not listen on {port} within 20 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(server)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn discovers_http_server_with_pid_cmdline_and_connection() -> Result<()> {
    let server = HttpServer::start()?;
    // Make this test process a service too, so its connection becomes an edge.
    let own_listener = TcpListener::bind("127.0.0.1:0")?;
    let own_port = own_listener.local_addr()?.port();
    let mut client = TcpStream::connect(("127.0.0.1", server.port))?;
    // An HTTP/1.0 request is answered and closed; send only part of one so the
    // connection stays established while discovery runs.
    client.write_all(b"GET / HTTP/1.1\r\n")?;
    let client_addr = client.local_addr()?;

    let started = Instant::now();
    let snap = discover(&Options::default()).await;
    println!("discover() took {:?} ({} services, {} edges)", started.elapsed(), snap.services.len(), snap.edges.len());
    println!("notes: {:?}", snap.notes);

    let svc = snap
        .services
        .iter()
        .find(|s| s.ports.iter().any(|p| p.port == server.port))
        .with_context(|| format!("no service listens on {}: {:#?}", server.port, snap.services))?;
    assert_eq!(svc.kind, ServiceKind::Process);
    assert!(svc.id.starts_with("process:python"), "id {}", svc.id);
    assert!(svc.id.ends_with(&format!(":{}", server.port)), "id {}", svc.id);
    assert!(svc.pids.contains(&server.child.id()), "pids {:?} lack {}", svc.pids, server.child.id());
    let proc = svc.processes.iter().find(|p| p.pid == server.child.id()).context("process info")?;
    assert!(proc.cmdline.iter().any(|a| a == "http.server"), "cmdline {:?}", proc.cmdline);
    assert!(proc.exe.is_some());
    assert_eq!(proc.uid, Some(current_uid()?));
    let port = svc.ports.iter().find(|p| p.port == server.port).context("port")?;
    assert_eq!(port.address, "127.0.0.1");

    // The held connection, from this process to the server, in the parsed tables.
    let host = scan_host(Path::new("/proc"), None);
    let server_addr: SocketAddr = ([127, 0, 0, 1], server.port).into();
    let conn = host
        .sockets
        .iter()
        .find(|s| {
            s.socket.state == SocketState::Established
                && s.socket.local == client_addr
                && s.socket.remote == server_addr
        })
        .context("client connection not in /proc/net/tcp")?;
    assert_eq!(host.holders(&conn.socket), [std::process::id()]);

    // And as an edge from this test's own service to the server's.
    let me = snap
        .services
        .iter()
        .find(|s| s.pids.contains(&std::process::id()))
        .context("the test process (listening too) is a service")?;
    assert!(me.ports.iter().any(|p| p.port == own_port));
    let edge = snap
        .edges
        .iter()
        .find(|e| e.kind == EdgeKind::Tcp && e.from == me.id && e.to == svc.id)
        .with_context(|| format!("no tcp edge {} -> {}: {:?}", me.id, svc.id, snap.edges))?;
    assert_eq!(edge.detail, server.port.to_string());
    assert!(edge.count >= 1);

    // Finish the request so the server answers (it really is the process we talked to).
    client.write_all(b"Host: x\r\nConnection: close\r\n\r\n")?;
    let mut reply = String::new();
    client.read_to_string(&mut reply)?;
    assert!(reply.starts_with("HTTP/1.0 200"), "reply {reply:.80}");
    drop(own_listener);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn discover_timing() {
    let opts = Options::default();
    let first = Instant::now();
    let snap = discover(&opts).await;
    let cold = first.elapsed();
    let mut warm = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        discover(&opts).await;
        warm.push(t.elapsed());
    }
    println!(
        "discover(): first {cold:?}, then {warm:?}; {} services, {} edges, notes {:?}",
        snap.services.len(),
        snap.edges.len(),
        snap.notes
    );
}

fn current_uid() -> Result<u32> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status.lines().find(|l| l.starts_with("Uid:")).context("Uid line")?;
    Ok(line.split_whitespace().nth(1).context("uid")?.parse()?)
}

#[tokio::test]
async fn missing_docker_socket_is_a_note_not_a_failure() {
    let opts = Options { docker_socket: "/nonexistent/docker.sock".into(), ..Options::default() };
    let snap = discover(&opts).await;
    assert!(
        snap.notes.iter().any(|n| n.contains("/nonexistent/docker.sock") && n.contains("absent")),
        "notes {:?}",
        snap.notes
    );
    assert!(snap.services.iter().all(|s| s.kind != ServiceKind::Container));
}
