//! Running one probe: an HTTP request, a TCP connect, or a command in a
//! fresh sandbox. Every outcome is a [`ProbeResult`]; nothing here fails.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use superserver_runtime::Image;
use superserver_wire::{ExecRequest, ProbeKind, ProbeResult};

use super::config::ProbeConfig;
use crate::request;
use crate::service::{now_ms, Service};

/// Most body bytes read to look for `expect_body`.
const MAX_BODY: usize = 64 * 1024;

/// A probe resolved against one service.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// URL, `host:port`, or the command joined for display.
    pub target: String,
}

/// Resolves `{host}` in the probe's URL or address.
pub(crate) fn target(p: &ProbeConfig, host: &str) -> Target {
    let t = match p.kind {
        ProbeKind::Http => p.url.clone().unwrap_or_default().replace("{host}", host),
        ProbeKind::Tcp => p.address.clone().unwrap_or_default().replace("{host}", host),
        ProbeKind::Command => p.command.clone().unwrap_or_default().join(" "),
    };
    Target { target: t }
}

impl Service {
    /// Runs the probe once, within its timeout.
    pub(crate) async fn probe_once(&self, p: &ProbeConfig, t: &Target) -> ProbeResult {
        let timeout = Duration::from_secs(p.timeout_seconds);
        let started = Instant::now();
        let at_ms = now_ms();
        let outcome = match p.kind {
            ProbeKind::Http => tokio::time::timeout(timeout, self.probe_http(p, &t.target, timeout)).await,
            ProbeKind::Tcp => tokio::time::timeout(timeout, probe_tcp(&t.target)).await,
            ProbeKind::Command => tokio::time::timeout(timeout, self.probe_command(p, timeout)).await,
        };
        let (ok, message) = outcome.unwrap_or_else(|_| (false, format!("timed out after {} s", p.timeout_seconds)));
        ProbeResult { at_ms, ok, latency_ms: started.elapsed().as_millis() as u64, message }
    }

    async fn probe_http(&self, p: &ProbeConfig, url: &str, timeout: Duration) -> (bool, String) {
        let client = self.inner.health.http_client();
        let res = match client.get(url).timeout(timeout).send().await {
            Ok(r) => r,
            Err(e) => return (false, describe_reqwest(&e)),
        };
        let status = res.status().as_u16();
        let status_ok = match p.expect_status {
            Some(s) => status == s,
            None => (200..400).contains(&status),
        };
        if !status_ok {
            return (false, format!("HTTP {status}"));
        }
        let Some(want) = &p.expect_body else { return (true, format!("HTTP {status}")) };
        let mut body = Vec::new();
        let mut res = res;
        while body.len() < MAX_BODY {
            match res.chunk().await {
                Ok(Some(c)) => body.extend_from_slice(&c),
                Ok(None) => break,
                Err(e) => return (false, format!("HTTP {status}, body unreadable: {}", describe_reqwest(&e))),
            }
        }
        if String::from_utf8_lossy(&body).contains(want.as_str()) {
            (true, format!("HTTP {status}"))
        } else {
            (false, format!("HTTP {status}, body without {want:?}"))
        }
    }

    /// The command in a fresh sandbox of the default image, as the server
    /// itself (not billed to a tenant).
    async fn probe_command(&self, p: &ProbeConfig, timeout: Duration) -> (bool, String) {
        let cfg = &self.inner.cfg;
        let req = ExecRequest {
            command: p.command.clone().unwrap_or_default(),
            timeout_ms: Some(timeout.as_millis() as u64),
            max_output_bytes: Some(4096),
            ..ExecRequest::default()
        };
        let Some(admin) = self.inner.auth.tenant(superserver_store::ADMIN_TENANT_ID) else {
            return (false, "the admin tenant is missing".into());
        };
        let run = async {
            let plan = admin.limits()?;
            let valid = request::validate(cfg, &req, &BTreeMap::new(), plan)?;
            let image = Image::parse(&cfg.sandbox.default_image)?;
            let lease = self
                .inner
                .pool
                .acquire(&image, &cfg.limits.default, superserver_runtime::Network::None, plan.priority)
                .await?;
            let out = self.exec_in(lease.sandbox(), valid, None).await?;
            crate::Result::<_>::Ok(out)
        };
        match run.await {
            Ok(out) if out.report.timed_out => (false, "command timed out".into()),
            Ok(out) if out.report.error.is_some() => {
                (false, format!("cannot start: {}", out.report.error.unwrap_or_default()))
            }
            Ok(out) => match out.report.code {
                Some(0) => (true, "exit 0".into()),
                Some(code) => {
                    let err = String::from_utf8_lossy(&out.stderr);
                    let first = err.lines().next().unwrap_or_default().chars().take(200).collect::<String>();
                    (false, if first.is_empty() { format!("exit {code}") } else { format!("exit {code}: {first}") })
                }
                None => (false, format!("killed by signal {}", out.report.signal.unwrap_or_default())),
            },
            Err(e) => (false, format!("cannot run the command: {e}")),
        }
    }
}

async fn probe_tcp(address: &str) -> (bool, String) {
    match tokio::net::TcpStream::connect(address).await {
        Ok(_) => (true, "connected".into()),
        Err(e) => (false, format!("connect: {e}")),
    }
}

/// A reqwest error in a few words (its source chain, without the URL).
fn describe_reqwest(e: &reqwest::Error) -> String {
    let mut msg = if e.is_connect() {
        "connect failed".to_string()
    } else if e.is_timeout() {
        "timed out".to_string()
    } else {
        "request failed".to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg = format!("{msg}: {s}");
        source = s.source();
    }
    msg
}
