//! Governed egress: what the proxy adds, measured side by side with direct
//! connections on loopback. One client program (Python's `socket`, no
//! proxy variables) runs once on the host straight to the upstream and once
//! in a governed sandbox, where every connection is redirected through the
//! proxy; the upstream is a server of this process on 127.0.0.1, named
//! `bench.example.test` for the sandbox through `[egress.hosts]`.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use superserver_wire::{
    CreateSandboxRequest, EgressLogLevel, EgressRule, ExecRequest, NetworkMode, NetworkSpec, SandboxInfo,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::report::{Report, Verdict};
use crate::server::{Server, ServerSpec};
use crate::stats::{ms, ratio, Samples};

use super::*;

pub const ADDED_LATENCY_TARGET_MS: f64 = 1.0;
pub const TUNNEL_TARGET_MB_S: f64 = 300.0;
pub const CREATE_P50_TARGET_MS: f64 = 15.0;
pub const INTERCEPTED_TARGET_MB_S: f64 = 100.0;

/// `N PORT HOST CAFILE [ADDRESS]`: one HTTPS request for N MiB, prints
/// seconds from the request to the last byte (CAFILE `-` for the default
/// trust; ADDRESS instead of resolving HOST).
const TLS_CLIENT: &str = r#"
import socket, ssl, sys, time
n, port, host, cafile = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(cafile=None if cafile == "-" else cafile)
addr = sys.argv[5] if len(sys.argv) > 5 else socket.gethostbyname(host)
s = ctx.wrap_socket(socket.create_connection((addr, port)), server_hostname=host)
s.sendall(b"GET /v1/bulk/%d HTTP/1.1\r\nHost: %s\r\n\r\n" % (n, host.encode()))
buf = bytearray(1 << 20)
view = memoryview(buf)
want = n << 20
got = 0
head = b""
t = time.perf_counter()
while b"\r\n\r\n" not in head:
    head += s.recv(4096)
got = len(head) - head.index(b"\r\n\r\n") - 4
while got < want:
    k = s.recv_into(view)
    if k == 0:
        break
    got += k
print(time.perf_counter() - t)
"#;

/// An HTTPS upstream for `host` with a certificate of a CA of this run;
/// answers `GET /v1/bulk/N` with N MiB. Returns its port and the CA (PEM).
async fn tls_upstream(host: &str) -> Result<(u16, String)> {
    let ca_key = rcgen::KeyPair::generate()?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::new())?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "benchmark CA");
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate()?;
    let cert = rcgen::CertificateParams::new(vec![host.to_string()])?.signed_by(&key, &issuer)?;
    let der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).map_err(anyhow::Error::msg)?;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], der)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(cfg));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = listener.accept().await else { return };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut s) = acceptor.accept(s).await else { return };
                let mut buf = vec![0u8; 4096];
                let Ok(n) = s.read(&mut buf).await else { return };
                let text = String::from_utf8_lossy(&buf[..n]).to_string();
                let mib: usize = text
                    .split_whitespace()
                    .nth(1)
                    .and_then(|p| p.strip_prefix("/v1/bulk/"))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", mib << 20);
                if s.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = vec![0u8; 1 << 20];
                for _ in 0..mib {
                    if s.write_all(&chunk).await.is_err() {
                        return;
                    }
                }
                let _ = s.flush().await;
            });
        }
    });
    Ok((port, ca_cert.pem()))
}

/// The measuring client: `latency N PORT HOST` prints one connect + small
/// request + response time per line (ms); `bulk MB PORT HOST` prints the
/// seconds to receive MB megabytes.
const CLIENT: &str = r#"
import socket, sys, time
mode, n, port, host = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
addr = socket.gethostbyname(host)
if mode == "latency":
    for _ in range(n):
        t = time.perf_counter()
        s = socket.create_connection((addr, port))
        s.sendall(b"GET / HTTP/1.1\r\nHost: " + host.encode() + b"\r\n\r\n")
        got = b""
        while not got.endswith(b"ok"):
            c = s.recv(4096)
            if not c:
                break
            got += c
        s.close()
        print((time.perf_counter() - t) * 1000)
else:
    s = socket.create_connection((addr, port))
    s.sendall(b"BULK %d\n" % n)
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    left = n << 20
    t = time.perf_counter()
    while left > 0:
        k = s.recv_into(view, min(len(buf), left))
        if k == 0:
            break
        left -= k
    print(time.perf_counter() - t)
"#;

/// Serves small HTTP responses, and `BULK n` as n MiB of zeros.
pub(super) async fn upstream() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else { return };
            let _ = s.set_nodelay(true);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let Ok(n) = s.read(&mut buf).await else { return };
                if let Some(rest) = buf[..n].strip_prefix(b"BULK ") {
                    let mib: usize = String::from_utf8_lossy(rest).trim().parse().unwrap_or(0);
                    let chunk = vec![0u8; 1 << 20];
                    for _ in 0..mib {
                        if s.write_all(&chunk).await.is_err() {
                            return;
                        }
                    }
                } else {
                    let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
                }
            });
        }
    });
    Ok(port)
}

fn governed() -> NetworkSpec {
    NetworkSpec {
        mode: NetworkMode::Policy,
        allow: vec![EgressRule::Short("bench.example.test".into())],
        log: Some(EgressLogLevel::Blocks),
        ..Default::default()
    }
}

/// The client's output lines on the host (direct).
async fn on_host(args: &[String]) -> Result<Vec<f64>> {
    let out = tokio::process::Command::new("python3").arg("-c").arg(CLIENT).args(args).output().await?;
    if !out.status.success() {
        bail!("the host client failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(parse(&String::from_utf8_lossy(&out.stdout)))
}

/// The client's output lines in the governed sandbox `sb` (through the proxy).
async fn in_sandbox(server: &Server, sb: &SandboxInfo, args: &[String]) -> Result<Vec<f64>> {
    let mut command = vec!["python3".to_string(), "-c".into(), CLIENT.into()];
    command.extend(args.iter().cloned());
    let req = ExecRequest { command, timeout_ms: Some(300_000), ..Default::default() };
    let r = server.client.exec(&sb.id, &req).await?;
    if r.exit_code != Some(0) {
        bail!("the sandboxed client failed: {}", r.stderr);
    }
    Ok(parse(&r.stdout))
}

fn parse(out: &str) -> Vec<f64> {
    out.lines().filter_map(|l| l.trim().parse().ok()).collect()
}

fn samples(ms_values: &[f64]) -> Samples {
    let mut s = Samples::with_capacity(ms_values.len());
    for v in ms_values {
        s.push(Duration::from_secs_f64(v / 1000.0));
    }
    s
}

pub async fn run(bin: &Path, plan: &Plan, report: &mut Report) -> Result<()> {
    let port = upstream().await?;
    let (tls_port, ca_pem) = tls_upstream("secure.example.test").await?;
    let ca_dir = tempfile::tempdir()?;
    let ca_file = ca_dir.path().join("bench-ca.pem");
    std::fs::write(&ca_file, &ca_pem)?;
    let spec = ServerSpec {
        extra_toml: format!(
            "[egress]\nextra_ca_file = \"{}\"\n[egress.hosts]\n\"bench.example.test\" = \"127.0.0.1\"\n\
             \"secure.example.test\" = \"127.0.0.1\"\n",
            ca_file.display()
        ),
        ..spec(6, super::warm::DEFAULT_POOL, super::warm::DEFAULT_PARALLEL)
    };
    let server = Server::start(bin, &spec).await?;

    // Create from the warm pool: the first governed create registers the
    // profile; the pool then keeps governed sandboxes ready.
    let governed_req = CreateSandboxRequest { network: Some(governed()), ..Default::default() };
    let first = server.client.create_sandbox(&governed_req).await.context("create a governed sandbox")?;
    server.client.delete_sandbox(&first.id).await?;
    server.wait_pool_settled(Duration::from_secs(60)).await?;
    let (n, budget) = (plan.exec.n.min(300), plan.exec.budget);
    let mut plain = Samples::with_capacity(n);
    let mut policy = Samples::with_capacity(n);
    let started = Instant::now();
    for i in 0..n {
        if started.elapsed() > budget {
            break;
        }
        for (network, out) in [(None, &mut plain), (Some(governed()), &mut policy)] {
            // Let the pool refill so both kinds come from it.
            if i % 4 == 0 {
                server.wait_pool_settled(Duration::from_secs(30)).await?;
            }
            let t = Instant::now();
            let sb = server.client.create_sandbox(&CreateSandboxRequest { network, ..Default::default() }).await?;
            out.push(t.elapsed());
            server.client.delete_sandbox(&sb.id).await?;
        }
    }
    let status = server.client.status().await?.pool;
    let pool_note = format!("pool hits {}, misses {} in all", status.hits, status.misses);
    if let (Some(p), Some(g)) = (plain.summary(), policy.summary()) {
        report.add(
            "POST /v1/sandboxes with network policy (warm pool) p50",
            ms(g.p50),
            &format!("≤ {}", ms(CREATE_P50_TARGET_MS)),
            Verdict::of(g.p50 <= CREATE_P50_TARGET_MS),
            format!("{}; without network p50 {} ({}); {pool_note}", g.line(), ms(p.p50), ratio(g.p50, p.p50)),
        );
    }

    // Added latency per small request: a new connection each time.
    let sb = server.client.create_sandbox(&governed_req).await?;
    let count = if plan.quick { 300 } else { 2000 };
    let args = |mode: &str, n: usize, host: &str| vec![mode.to_string(), n.to_string(), port.to_string(), host.into()];
    let direct = samples(&on_host(&args("latency", count, "127.0.0.1")).await?);
    let proxied = samples(&in_sandbox(&server, &sb, &args("latency", count, "bench.example.test")).await?);
    if let (Some(d), Some(p)) = (direct.summary(), proxied.summary()) {
        let added = p.p50 - d.p50;
        report.add(
            "latency added by the egress proxy per small HTTP request p50",
            ms(added),
            &format!("≤ {}", ms(ADDED_LATENCY_TARGET_MS)),
            Verdict::of(added <= ADDED_LATENCY_TARGET_MS),
            format!(
                "connect + GET + response, new connection each: direct {} / through the proxy {} (p99 {} / {})",
                ms(d.p50),
                ms(p.p50),
                ms(d.p99),
                ms(p.p99)
            ),
        );
    }

    // Plain tunnel throughput: one connection receiving bulk data.
    let mib = if plan.quick { 512 } else { 2048 };
    let secs_direct = on_host(&args("bulk", mib, "127.0.0.1")).await?.first().copied().unwrap_or(f64::NAN);
    let secs_proxy =
        in_sandbox(&server, &sb, &args("bulk", mib, "bench.example.test")).await?.first().copied().unwrap_or(f64::NAN);
    let mb = (mib as f64) * 1.048_576;
    let (direct_mb_s, proxy_mb_s) = (mb / secs_direct, mb / secs_proxy);
    report.add(
        "plain tunnel throughput through the egress proxy",
        format!("{proxy_mb_s:.0} MB/s"),
        &format!("≥ {TUNNEL_TARGET_MB_S:.0} MB/s"),
        Verdict::of(proxy_mb_s >= TUNNEL_TARGET_MB_S),
        format!(
            "{mib} MiB on one connection; direct on loopback {direct_mb_s:.0} MB/s ({})",
            ratio(proxy_mb_s, direct_mb_s)
        ),
    );
    server.client.delete_sandbox(&sb.id).await?;

    // Intercepted HTTPS: a rule with a path makes the proxy terminate the
    // sandbox's TLS and open its own to the host.
    let inspected = NetworkSpec {
        mode: NetworkMode::Policy,
        allow: vec![EgressRule::Full(superserver_wire::EgressRuleSpec {
            host: "secure.example.test".into(),
            paths: vec!["/v1/".into()],
            ..Default::default()
        })],
        log: Some(EgressLogLevel::Blocks),
        ..Default::default()
    };
    let req = CreateSandboxRequest { network: Some(inspected), ..Default::default() };
    let sb = server.client.create_sandbox(&req).await?;
    let tls_args =
        |host: &str, cafile: &str| vec![mib.to_string(), tls_port.to_string(), host.to_string(), cafile.into()];
    let direct = {
        let out = tokio::process::Command::new("python3")
            .arg("-c")
            .arg(TLS_CLIENT)
            .args(tls_args("secure.example.test", &ca_file.display().to_string()))
            .arg("127.0.0.1")
            .output()
            .await?;
        if !out.status.success() {
            bail!("the host TLS client failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        parse(&String::from_utf8_lossy(&out.stdout)).first().copied().unwrap_or(f64::NAN)
    };
    let mut command = vec!["python3".to_string(), "-c".into(), TLS_CLIENT.into()];
    command.extend(tls_args("secure.example.test", "-"));
    let r =
        server.client.exec(&sb.id, &ExecRequest { command, timeout_ms: Some(300_000), ..Default::default() }).await?;
    if r.exit_code != Some(0) {
        bail!("the sandboxed TLS client failed: {}", r.stderr);
    }
    let intercepted = parse(&r.stdout).first().copied().unwrap_or(f64::NAN);
    let (direct_mb_s, proxy_mb_s) = (mb / direct, mb / intercepted);
    report.add(
        "intercepted HTTPS throughput through the egress proxy",
        format!("{proxy_mb_s:.0} MB/s"),
        &format!("≥ {INTERCEPTED_TARGET_MB_S:.0} MB/s"),
        Verdict::of(proxy_mb_s >= INTERCEPTED_TARGET_MB_S),
        format!(
            "{mib} MiB in one HTTPS response, TLS terminated and re-originated by the proxy; direct HTTPS on loopback \
             {direct_mb_s:.0} MB/s ({})",
            ratio(proxy_mb_s, direct_mb_s)
        ),
    );
    server.client.delete_sandbox(&sb.id).await?;

    // The same with a custody secret bound to the host: its TLS is
    // intercepted for that, the request gets the secret's header, and the
    // response is searched for the value in every encoding (to mask it).
    let put = superserver_wire::PutSecretRequest {
        value: "bench-secret-value-0123456789".into(),
        hosts: vec!["secure.example.test".into()],
        header: Some("Authorization".into()),
        template: Some("Bearer {value}".into()),
    };
    server.client.put_secret("BENCH_TOKEN", &put).await?;
    let req = CreateSandboxRequest {
        network: Some(NetworkSpec { allow: vec![EgressRule::Short("secure.example.test".into())], ..governed() }),
        secrets: vec!["BENCH_TOKEN".into()],
        ..Default::default()
    };
    let sb = server.client.create_sandbox(&req).await?;
    let mut command = vec!["python3".to_string(), "-c".into(), TLS_CLIENT.into()];
    command.extend(tls_args("secure.example.test", "-"));
    let r =
        server.client.exec(&sb.id, &ExecRequest { command, timeout_ms: Some(300_000), ..Default::default() }).await?;
    if r.exit_code != Some(0) {
        bail!("the sandboxed TLS client holding a secret failed: {}", r.stderr);
    }
    let with_secret = mb / parse(&r.stdout).first().copied().unwrap_or(f64::NAN);
    report.add(
        "intercepted HTTPS throughput, sandbox holding a custody secret",
        format!("{with_secret:.0} MB/s"),
        "",
        Verdict::Info,
        format!(
            "as above, the response masked for the secret's value in every encoding; {} of intercepted without",
            ratio(with_secret, proxy_mb_s)
        ),
    );
    server.client.delete_sandbox(&sb.id).await?;
    server.stop(report).await
}
