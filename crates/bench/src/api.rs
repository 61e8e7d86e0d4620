//! Measured loops against the HTTP API, through the typed keep-alive client.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use superserver_client::Client;
use superserver_wire::{CreateSandboxRequest, ExecRequest, ExecResult, RunRequest};

use crate::stats::Samples;

/// Bounds of one measured loop.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub n: usize,
    pub warmup: usize,
    pub budget: Duration,
}

/// Client-side latencies and, for the same requests, the command's own
/// duration as the server measured it (exec sent → exit seen).
#[derive(Debug, Default)]
pub struct Timed {
    pub client: Samples,
    pub in_sandbox: Samples,
}

pub fn true_run() -> RunRequest {
    RunRequest { command: vec!["true".into()], ..Default::default() }
}

pub fn true_exec() -> ExecRequest {
    ExecRequest { command: vec!["true".into()], ..Default::default() }
}

fn check(r: &ExecResult, what: &str) -> Result<()> {
    if r.exit_code != Some(0) {
        bail!("{what} of `true` did not exit 0: exit {:?}, signal {:?}, error {:?}", r.exit_code, r.signal, r.error);
    }
    Ok(())
}

/// Sequential `POST /v1/run` of `true`.
pub async fn run_latency(client: &Client, b: Bounds) -> Result<Timed> {
    let req = true_run();
    for _ in 0..b.warmup {
        check(&client.run(&req).await.context("warm-up run")?, "run")?;
    }
    let mut out = Timed::default();
    let start = Instant::now();
    for _ in 0..b.n {
        if start.elapsed() > b.budget {
            break;
        }
        let t = Instant::now();
        let r = client.run(&req).await.context("POST /v1/run")?;
        out.client.push(t.elapsed());
        check(&r, "run")?;
        out.in_sandbox.push(Duration::from_secs_f64(r.duration_ms / 1000.0));
    }
    Ok(out)
}

/// `POST /v1/run` of `true`, each only once the pool has refilled and the
/// previous sandbox is gone: the request path without the background create
/// and destroy of earlier runs competing for the CPU (but with idle CPUs to
/// wake at each hop).
pub async fn paced_run_latency(server: &crate::server::Server, b: Bounds) -> Result<Timed> {
    let req = true_run();
    let mut out = Timed::default();
    let start = Instant::now();
    for _ in 0..b.n {
        if start.elapsed() > b.budget {
            break;
        }
        server.wait_pool_settled(Duration::from_secs(10)).await?;
        // Let the destroy of the previous run's sandbox finish as well.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let t = Instant::now();
        let r = server.client.run(&req).await.context("POST /v1/run")?;
        out.client.push(t.elapsed());
        check(&r, "run")?;
        out.in_sandbox.push(Duration::from_secs_f64(r.duration_ms / 1000.0));
    }
    Ok(out)
}

/// Sequential `POST /v1/sandboxes/{id}/exec` of `true`.
pub async fn exec_latency(client: &Client, id: &str, b: Bounds) -> Result<Timed> {
    let req = true_exec();
    for _ in 0..b.warmup {
        check(&client.exec(id, &req).await.context("warm-up exec")?, "exec")?;
    }
    let mut out = Timed::default();
    let start = Instant::now();
    for _ in 0..b.n {
        if start.elapsed() > b.budget {
            break;
        }
        let t = Instant::now();
        let r = client.exec(id, &req).await.context("POST /v1/sandboxes/{id}/exec")?;
        out.client.push(t.elapsed());
        check(&r, "exec")?;
        out.in_sandbox.push(Duration::from_secs_f64(r.duration_ms / 1000.0));
    }
    Ok(out)
}

/// Sequential `GET /healthz`: the HTTP round trip with no work behind it.
pub async fn healthz_latency(client: &Client, b: Bounds) -> Result<Samples> {
    for _ in 0..b.warmup {
        client.healthz().await?;
    }
    let mut s = Samples::with_capacity(b.n);
    let start = Instant::now();
    for _ in 0..b.n {
        if start.elapsed() > b.budget {
            break;
        }
        let t = Instant::now();
        client.healthz().await?;
        s.push(t.elapsed());
    }
    Ok(s)
}

/// What a throughput run achieved.
#[derive(Debug, Default)]
pub struct Throughput {
    /// Successful runs inside the measured window.
    pub ok: usize,
    /// Every run that finished, warm-up and stragglers included.
    pub all: usize,
    pub failed: usize,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    pub latencies: Samples,
}

impl Throughput {
    pub fn per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// `workers` clients each running `true` back to back. Runs finishing in the
/// first `warmup` are not counted; the loop stops after `warmup + window`.
pub async fn throughput(client: &Client, workers: usize, warmup: Duration, window: Duration) -> Throughput {
    let req = true_run();
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + window;
    let result = Mutex::new(Throughput::default());
    let one = |_: usize| {
        let (req, result) = (&req, &result);
        async move {
            while Instant::now() < end {
                let t = Instant::now();
                let r = client.run(req).await;
                let done = Instant::now();
                let mut res = result.lock().unwrap_or_else(|e| e.into_inner());
                res.all += 1;
                if done < measure_from || done > end {
                    continue;
                }
                match r {
                    Ok(r) if r.exit_code == Some(0) => {
                        res.ok += 1;
                        res.latencies.push(done - t);
                    }
                    Ok(r) => {
                        res.failed += 1;
                        res.first_error.get_or_insert(format!("exit {:?}, error {:?}", r.exit_code, r.error));
                    }
                    Err(e) => {
                        res.failed += 1;
                        res.first_error.get_or_insert(e.to_string());
                    }
                }
            }
        }
    };
    futures::future::join_all((0..workers).map(one)).await;
    let mut res = result.into_inner().unwrap_or_else(|e| e.into_inner());
    res.elapsed = window;
    res
}

/// Outcome of creating many persistent sandboxes.
#[derive(Debug, Default)]
pub struct Created {
    pub ids: Vec<String>,
    pub latencies: Samples,
    pub elapsed: Duration,
    pub first_error: Option<String>,
}

/// Creates up to `n` persistent sandboxes with `workers` concurrent clients,
/// stopping at the first failure or when `budget` is spent.
pub async fn create_many(client: &Client, n: usize, workers: usize, budget: Duration) -> Created {
    let next = AtomicUsize::new(0);
    let out = Mutex::new(Created::default());
    let start = Instant::now();
    let one = |_: usize| {
        let (next, out) = (&next, &out);
        async move {
            loop {
                if start.elapsed() > budget || next.fetch_add(1, Ordering::SeqCst) >= n {
                    return;
                }
                let t = Instant::now();
                let r = client.create_sandbox(&CreateSandboxRequest::default()).await;
                let mut o = out.lock().unwrap_or_else(|e| e.into_inner());
                match r {
                    Ok(info) => {
                        o.latencies.push(t.elapsed());
                        o.ids.push(info.id);
                    }
                    Err(e) => {
                        o.first_error.get_or_insert(e.to_string());
                        // Stop every worker: the next index is past the end.
                        next.store(n, Ordering::SeqCst);
                        return;
                    }
                }
            }
        }
    };
    futures::future::join_all((0..workers).map(one)).await;
    let mut o = out.into_inner().unwrap_or_else(|e| e.into_inner());
    o.elapsed = start.elapsed();
    o
}

/// Deletes every sandbox in `ids` with `workers` concurrent clients, within
/// `budget`. Returns the latencies and how many deletions failed.
pub async fn delete_many(client: &Client, ids: &[String], workers: usize, budget: Duration) -> (Samples, usize) {
    let next = AtomicUsize::new(0);
    let out = Mutex::new((Samples::with_capacity(ids.len()), 0usize));
    let start = Instant::now();
    let one = |_: usize| {
        let (next, out) = (&next, &out);
        async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= ids.len() || start.elapsed() > budget {
                    return;
                }
                let t = Instant::now();
                let r = client.delete_sandbox(&ids[i]).await;
                let mut o = out.lock().unwrap_or_else(|e| e.into_inner());
                match r {
                    Ok(_) => o.0.push(t.elapsed()),
                    Err(_) => o.1 += 1,
                }
            }
        }
    };
    futures::future::join_all((0..workers).map(one)).await;
    out.into_inner().unwrap_or_else(|e| e.into_inner())
}

/// Sequential exec of `true` through a minimal blocking HTTP/1.1 client (one
/// keep-alive socket, the request bytes prepared once, the response read up to
/// its `Content-Length`): the server's latency with next to no client cost,
/// for comparison with the typed client's loop.
pub async fn lean_exec_latency(url: &str, key: &str, id: &str, b: Bounds) -> Result<Samples> {
    let addr = url.trim_start_matches("http://").trim_end_matches('/').to_string();
    let body = serde_json::to_vec(&true_exec())?;
    let mut request = format!(
        "POST /v1/sandboxes/{id}/exec HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         authorization: Bearer {key}\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    tokio::task::spawn_blocking(move || -> Result<Samples> {
        let mut sock = std::net::TcpStream::connect(&addr).with_context(|| format!("connect to {addr}"))?;
        sock.set_nodelay(true)?;
        sock.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut one = |sock: &mut std::net::TcpStream| -> Result<()> {
            use std::io::{Read, Write};
            sock.write_all(&request)?;
            let mut n = 0;
            loop {
                let got = sock.read(&mut buf[n..])?;
                if got == 0 {
                    bail!("the server closed the connection");
                }
                n += got;
                if let Some(len) = complete_response(&buf[..n])? {
                    if !buf[..len].starts_with(b"HTTP/1.1 200") || !contains(&buf[..len], b"\"exit_code\":0") {
                        bail!("exec of `true` failed: {}", String::from_utf8_lossy(&buf[..len]));
                    }
                    return Ok(());
                }
                if n == buf.len() {
                    bail!("response larger than {} bytes", buf.len());
                }
            }
        };
        for _ in 0..b.warmup {
            one(&mut sock)?;
        }
        let mut s = Samples::with_capacity(b.n);
        let start = Instant::now();
        for _ in 0..b.n {
            if start.elapsed() > b.budget {
                break;
            }
            let t = Instant::now();
            one(&mut sock)?;
            s.push(t.elapsed());
        }
        Ok(s)
    })
    .await?
}

/// The length of the first whole response in `buf`, if it is all there.
fn complete_response(buf: &[u8]) -> Result<Option<usize>> {
    let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { return Ok(None) };
    let head = std::str::from_utf8(&buf[..head_end]).context("response head is not UTF-8")?;
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length").then(|| v.trim().parse::<usize>().ok())?
        })
        .context("response without Content-Length")?;
    let total = head_end + 4 + len;
    Ok((buf.len() >= total).then_some(total))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
