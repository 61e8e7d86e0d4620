//! Logging in to the dashboard as a browser does, and timing its pages.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use reqwest::header::{HeaderMap, ACCEPT, COOKIE, SET_COOKIE};
use reqwest::redirect::Policy;
use reqwest::StatusCode;

use crate::api::Bounds;
use crate::stats::Samples;

/// The dashboard's session cookie (`superserver_core::sessions::SESSION_COOKIE`).
const SESSION_COOKIE: &str = "ss_session";
/// The login form's double-submit cookie.
const LOGIN_COOKIE: &str = "ss_login";

/// A logged-in browser: its session cookie, one kept-alive connection.
pub(super) struct Session {
    http: reqwest::Client,
    base: String,
    /// `ss_session=…`, as the browser sends it.
    pub cookie: String,
}

/// The value of the cookie `name` that a response's headers set.
fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|v| {
        let (k, rest) = v.split_once('=')?;
        let value = rest.split(';').next().unwrap_or_default();
        (k.trim() == name && !value.is_empty()).then(|| value.to_string())
    })
}

impl Session {
    /// `GET /login` (the form and its token cookie), then `POST /login`
    /// with the key and the token, as the form does: a 303 to `/` that
    /// sets the session cookie.
    pub(super) async fn login(base: &str, key: &str) -> Result<Self> {
        let http = reqwest::Client::builder().no_proxy().redirect(Policy::none()).build()?;
        let form = http.get(format!("{base}/login")).send().await.context("GET /login")?;
        let token = set_cookie(form.headers(), LOGIN_COOKIE).context("GET /login set no form token cookie")?;
        let res = http
            .post(format!("{base}/login"))
            .header(COOKIE, format!("{LOGIN_COOKIE}={token}"))
            .form(&[("key", key), ("csrf", token.as_str())])
            .send()
            .await
            .context("POST /login")?;
        if res.status() != StatusCode::SEE_OTHER {
            bail!("POST /login answered {} instead of a redirect: the key was refused", res.status());
        }
        let session = set_cookie(res.headers(), SESSION_COOKIE).context("POST /login set no session cookie")?;
        Ok(Self { http, base: base.to_string(), cookie: format!("{SESSION_COOKIE}={session}") })
    }

    /// One page: the time to its last byte, the server's own
    /// `Server-Timing: render;dur=…` (if it sends one) and its size.
    async fn fetch(&self, path: &str) -> Result<Fetched> {
        let t = Instant::now();
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .header(COOKIE, &self.cookie)
            .header(ACCEPT, "text/html")
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        let status = res.status();
        let server_ms = res
            .headers()
            .get("server-timing")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').find_map(|p| p.trim().strip_prefix("dur=")))
            .and_then(|v| v.parse::<f64>().ok());
        let body = res.bytes().await.with_context(|| format!("GET {path}: body"))?;
        let total = t.elapsed();
        if status != StatusCode::OK {
            bail!("GET {path} answered {status}");
        }
        let text = String::from_utf8_lossy(&body);
        if path != "/login" && !text.contains("action=\"/logout\"") {
            bail!("GET {path} did not show a logged-in page");
        }
        Ok(Fetched { total, server_ms, bytes: body.len() })
    }
}

struct Fetched {
    total: Duration,
    server_ms: Option<f64>,
    bytes: usize,
}

/// One page's figures.
pub(super) struct PageFigures {
    pub name: &'static str,
    pub path: String,
    /// Request sent → last byte of the page, over loopback.
    pub total: Samples,
    /// The server's `Server-Timing` render duration.
    pub server: Samples,
    pub bytes: usize,
}

/// Every page `b.n` times, in rounds (each round fetches every page once,
/// so a background task of the server disturbs all pages alike), after
/// `b.warmup` rounds not counted; stops early when `b.budget` is spent.
pub(super) async fn measure(s: &Session, pages: &[(&'static str, String)], b: Bounds) -> Result<Vec<PageFigures>> {
    let mut out: Vec<PageFigures> = pages
        .iter()
        .map(|(name, path)| PageFigures {
            name,
            path: path.clone(),
            total: Samples::with_capacity(b.n),
            server: Samples::with_capacity(b.n),
            bytes: 0,
        })
        .collect();
    let start = Instant::now();
    for round in 0..b.warmup + b.n {
        if round >= b.warmup && start.elapsed() > b.budget {
            break;
        }
        for f in &mut out {
            let got = s.fetch(&f.path).await?;
            if round < b.warmup {
                continue;
            }
            f.total.push(got.total);
            if let Some(ms) = got.server_ms {
                f.server.push(Duration::from_secs_f64(ms / 1000.0));
            }
            f.bytes = got.bytes;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    #[test]
    fn reads_a_set_cookie() {
        let mut h = HeaderMap::new();
        h.append(SET_COOKIE, HeaderValue::from_static("ss_login=; Path=/login; Max-Age=0"));
        h.append(SET_COOKIE, HeaderValue::from_static("ss_session=abc123; Path=/; HttpOnly; SameSite=Strict"));
        assert_eq!(set_cookie(&h, SESSION_COOKIE).as_deref(), Some("abc123"));
        assert_eq!(set_cookie(&h, LOGIN_COOKIE), None, "an emptied cookie is no value");
    }
}
