//! Carrying an allowed connection. HTTP requests go one by one through the
//! [`Inspector`]: the policy decides each request after the first, secret
//! placeholders are checked against the destination (and replaced by the
//! values for a bound host), and content inspection looks for secrets.
//! Other bytes pass as they come, still checked for placeholders when the
//! sandbox holds secrets. Responses come back with custody values masked.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use superserver_wire::EgressDecision;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use super::{request_verdict, Dest};
use crate::custody::{BodyStream, Custody, Redactor};
use crate::dlp::{DlpAction, Finding, Scanner, StreamScan};
use crate::http::{self, Action, Filter, Head};
use crate::proxy::AlertKind;
use crate::session::{Draft, SessionState};

/// How long responses to requests already forwarded may still come back
/// once the connection is being ended.
const GRACE: Duration = Duration::from_secs(5);
/// How long bytes that may start a secret's value are held back from the
/// sandbox waiting for the rest of a response.
const HOLD: Duration = Duration::from_millis(50);

/// Why a connection was ended part way.
pub(super) struct Stopped {
    pub draft: Draft,
    pub why: String,
    /// What the sandbox's client is told.
    pub message: String,
    pub alert: Option<AlertKind>,
    /// The request's head went upstream before it was stopped.
    pub mid_request: bool,
}

/// The filter of one HTTP connection.
pub(super) struct Inspector<'a> {
    state: &'a SessionState,
    dest: &'a Dest,
    /// Requests came in absolute form (explicit proxy use).
    absolute: bool,
    /// The first request was decided before the connection was opened.
    first: bool,
    base: Draft,
    custody: Option<Arc<Custody>>,
    /// The body in flight, when it goes in pieces.
    body: Option<BodyStream>,
    dlp: Option<&'a Scanner>,
    /// Content inspection of the body in flight, when it goes in pieces.
    dlp_body: Option<StreamScan<'a>>,
    current: Draft,
    pub stopped: Option<Stopped>,
    /// Findings of rules that log rather than block: (request, rule).
    pub logged: Vec<(Draft, String)>,
    /// Requests forwarded so far.
    pub forwarded: u64,
}

impl<'a> Inspector<'a> {
    pub fn new(state: &'a SessionState, dest: &'a Dest, base: &Draft, absolute: bool) -> Self {
        Self {
            state,
            dest,
            absolute,
            first: true,
            base: base.clone(),
            custody: state.custody.clone().filter(|c| !c.is_empty()),
            body: None,
            dlp: state.dlp.as_deref(),
            dlp_body: None,
            current: base.clone(),
            stopped: None,
            logged: Vec::new(),
            forwarded: 0,
        }
    }

    fn host(&self) -> Option<&str> {
        self.dest.name.as_deref()
    }

    fn stop(&mut self, why: String, message: String, alert: Option<AlertKind>, mid_request: bool) {
        self.stopped = Some(Stopped { draft: self.current.clone(), why, message, alert, mid_request });
    }

    /// Acts on content inspection's findings; `false` if the request is to
    /// be stopped.
    fn judge(&mut self, findings: Vec<Finding>, mid_request: bool) -> bool {
        for f in &findings {
            if f.action == DlpAction::Log {
                self.logged.push((self.current.clone(), format!("dlp (logged): {}", f.rule)));
            }
        }
        let Some(block) = findings.into_iter().find(|f| f.action == DlpAction::Block) else { return true };
        let why = format!("dlp: {}", block.rule);
        let message = format!(
            "superserver egress: request blocked: it carries a secret (rule {}: {})",
            block.rule, block.description
        );
        self.stop(why, message, Some(AlertKind::SecretInContent), mid_request);
        false
    }

    /// Content inspection of `data` as the sandbox sent it (placeholders,
    /// which are not secrets, blanked).
    fn inspect(&self, data: &[u8]) -> Vec<Finding> {
        let Some(scanner) = self.dlp else { return Vec::new() };
        match &self.custody {
            Some(c) => scanner.scan(&c.mask_placeholders(data)),
            None => scanner.scan(data),
        }
    }

    /// A placeholder on its way to a host its secret is not bound to.
    fn leak(&mut self, secret: &str, mid_request: bool) {
        let host = self.host().map_or_else(|| "an address without a name".to_string(), str::to_string);
        let why = format!("secret {secret} is not bound to {host}");
        let message = format!(
            "superserver egress: request blocked: it carries the placeholder of secret {secret}, which may only be sent to its bound hosts"
        );
        self.stop(why, message, Some(AlertKind::SecretLeak), mid_request);
    }
}

impl Filter for Inspector<'_> {
    fn request(&mut self, head: &Head, raw: &[u8], body: &[u8], complete: bool) -> Action {
        self.current = self.base.clone();
        self.current.method = Some(head.method.clone());
        self.current.path = Some(head.path.clone());
        if !std::mem::take(&mut self.first) {
            if let Err(why) = request_verdict(self.state, head, self.dest) {
                let target = self.host().unwrap_or_default().to_string();
                let message =
                    format!("superserver egress: {target} {} {} is not allowed ({why})", head.method, head.path);
                self.stop(why, message, None, false);
                return Action::Stop;
            }
        }
        let host = self.host().map(str::to_string);
        if let Some(c) = self.custody.clone() {
            if let Some(secret) = c.leak(raw, host.as_deref()).or_else(|| c.leak(body, host.as_deref())) {
                let secret = secret.to_string();
                self.leak(&secret, false);
                return Action::Stop;
            }
        }
        let mut findings = self.inspect(raw);
        findings.extend(self.inspect(body));
        findings.sort_by(|a, b| a.rule.cmp(&b.rule));
        findings.dedup_by(|a, b| a.rule == b.rule);
        if !self.judge(findings, false) {
            return Action::Stop;
        }
        let mut out_head = if self.absolute { http::origin_form(raw, head) } else { raw.to_vec() };
        let mut out_body = body.to_vec();
        if let (Some(c), Some(h)) = (&self.custody, &host) {
            if c.binds(Some(h)) {
                out_head = c.rewrite_head(&out_head, h);
                out_body = c.substitute(body, h).into_owned();
            }
        }
        if !complete {
            self.body = self.custody.as_ref().map(|c| c.body(host));
            self.dlp_body = self.dlp.map(|d| {
                let mut s = d.stream();
                // The held start of the body was scanned: prime the overlap.
                let _ = s.push(body);
                s
            });
        }
        self.forwarded += 1;
        Action::Send { head: out_head, body: out_body }
    }

    fn more(&mut self, piece: &[u8]) -> Option<Vec<u8>> {
        if let Some(scan) = &mut self.dlp_body {
            let findings = match &self.custody {
                Some(c) => scan.push(&c.mask_placeholders(piece)),
                None => scan.push(piece),
            };
            if !self.judge(findings, true) {
                return None;
            }
        }
        let Some(stream) = &mut self.body else { return Some(piece.to_vec()) };
        match stream.push(piece) {
            Ok(out) => Some(out),
            Err(leak) => {
                self.leak(&leak.secret, true);
                None
            }
        }
    }

    fn end(&mut self) -> Option<Vec<u8>> {
        self.dlp_body = None;
        let Some(mut stream) = self.body.take() else { return Some(Vec::new()) };
        match stream.finish() {
            Ok(out) => Some(out),
            Err(leak) => {
                self.leak(&leak.secret, true);
                None
            }
        }
    }
}

/// Carries a connection whose destination is decided: `buf` holds bytes
/// already read from the client. Records the connection's event (and any
/// later refusal) when it ends.
#[allow(clippy::too_many_arguments)]
pub(super) async fn carry<CR, CW, UR, UW>(
    state: &SessionState,
    (mut cr, mut cw): (CR, CW),
    (mut ur, mut uw): (UR, UW),
    mut buf: BytesMut,
    is_http: bool,
    absolute: bool,
    dest: &Dest,
    mut draft: Draft,
    rule: &str,
    started: Instant,
) where
    CR: AsyncRead + Unpin,
    CW: AsyncWrite + Unpin,
    UR: AsyncRead + Unpin,
    UW: AsyncWrite + Unpin,
{
    let custody = state.custody.clone().filter(|c| !c.is_empty());
    let (stop_tx, stop_rx) = watch::channel(None::<Duration>);
    let mut inspector = Inspector::new(state, dest, &draft, absolute);
    let mut raw_leak: Option<String> = None;
    let up = async {
        let r = if is_http {
            let r = http::pump(&mut cr, &mut buf, &mut uw, &mut inspector).await;
            if let Some(s) = &inspector.stopped {
                // Responses to requests already forwarded may still come back,
                // unless the stopped one is itself half sent.
                let grace = if s.mid_request || inspector.forwarded == 0 { Duration::ZERO } else { GRACE };
                let _ = stop_tx.send(Some(grace));
            }
            r
        } else {
            let mut check = custody.as_ref().map(|c| c.check_only(dest.name.clone()));
            let r = copy_checked(&mut cr, &mut buf, &mut uw, check.as_mut()).await;
            if let Err(CopyEnd::Leak(secret)) = &r {
                raw_leak = Some(secret.clone());
                let _ = stop_tx.send(Some(Duration::ZERO));
            }
            r.map_err(|e| match e {
                CopyEnd::Io(e) => e,
                CopyEnd::Leak(_) => std::io::ErrorKind::PermissionDenied.into(),
            })
        };
        let _ = uw.shutdown().await;
        r.unwrap_or(0)
    };
    let down = async {
        let n = downstream(&mut ur, &mut cw, custody.as_ref().map(|c| c.redactor()), stop_rx).await;
        n
    };
    let (out, inn) = tokio::join!(up, down);
    let stopped = inspector.stopped.take();
    for (mut d, rule) in std::mem::take(&mut inspector.logged) {
        d.notable = true;
        state.finish(d, EgressDecision::Allow, &rule, Instant::now());
    }
    if let Some(s) = &stopped {
        let _ = cw.write_all(&http::refusal(403, "Forbidden", &s.message)).await;
        let _ = cw.shutdown().await;
        // Read what the client is still sending, so that closing does not
        // reset the connection and lose the refusal before it is read.
        linger(&mut cr).await;
    }
    let _ = cw.shutdown().await;
    draft.bytes_out = out;
    draft.bytes_in = inn;
    state.finish(draft.clone(), EgressDecision::Allow, rule, started);
    if let Some(s) = stopped {
        if let Some(kind) = s.alert {
            state.alert(kind, &s.draft, &s.why);
        }
        state.finish(s.draft, EgressDecision::Deny, &s.why, Instant::now());
    }
    if let Some(secret) = raw_leak {
        let host = dest.name.clone().unwrap_or_else(|| "an address without a name".into());
        let why = format!("secret {secret} is not bound to {host}");
        let mut d = draft;
        d.bytes_out = 0;
        d.bytes_in = 0;
        state.alert(AlertKind::SecretLeak, &d, &why);
        state.finish(d, EgressDecision::Deny, &why, Instant::now());
    }
}

/// Reads and drops a client's remaining bytes, for a bounded time and amount.
async fn linger<R: AsyncRead + Unpin>(client: &mut R) {
    let mut sink = vec![0u8; 64 * 1024];
    let mut left: usize = 64 << 20;
    let until = tokio::time::Instant::now() + Duration::from_secs(2);
    while left > 0 {
        match tokio::time::timeout_at(until, client.read(&mut sink)).await {
            Ok(Ok(n)) if n > 0 => left = left.saturating_sub(n),
            _ => return,
        }
    }
}

enum CopyEnd {
    Io(std::io::Error),
    Leak(String),
}

/// Copies the client's bytes upstream, checking them for placeholders
/// when a check is given.
async fn copy_checked<R, W>(
    client: &mut R,
    buf: &mut BytesMut,
    upstream: &mut W,
    mut check: Option<&mut BodyStream>,
) -> Result<u64, CopyEnd>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut sent = 0u64;
    loop {
        if buf.is_empty() {
            match http::fill(client, buf).await {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => return Err(CopyEnd::Io(e)),
            }
        }
        let piece = buf.split();
        let out: Cow<'_, [u8]> = match check.as_deref_mut() {
            Some(c) => Cow::Owned(c.push(&piece).map_err(|l| CopyEnd::Leak(l.secret))?),
            None => Cow::Borrowed(&piece),
        };
        upstream.write_all(&out).await.map_err(CopyEnd::Io)?;
        sent += piece.len() as u64;
    }
    if let Some(c) = check {
        let out = c.finish().map_err(|l| CopyEnd::Leak(l.secret))?;
        upstream.write_all(&out).await.map_err(CopyEnd::Io)?;
    }
    Ok(sent)
}

/// Copies the upstream's bytes to the client, masking custody values,
/// until the upstream ends or, once the connection is being ended, its
/// grace runs out. Returns the bytes read from upstream.
async fn downstream<UR, CW>(
    ur: &mut UR,
    cw: &mut CW,
    mut redactor: Option<Redactor>,
    mut stop: watch::Receiver<Option<Duration>>,
) -> u64
where
    UR: AsyncRead + Unpin,
    CW: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    let mut deadline: Option<tokio::time::Instant> = None;
    let mut stop_open = true;
    let far = || tokio::time::Instant::now() + Duration::from_secs(86_400);
    loop {
        let holding = redactor.as_ref().is_some_and(Redactor::holding);
        let read = tokio::select! {
            r = ur.read(&mut buf) => r,
            changed = stop.changed(), if stop_open && deadline.is_none() => {
                match changed {
                    Ok(()) => {
                        if let Some(grace) = *stop.borrow() {
                            deadline = Some(tokio::time::Instant::now() + grace);
                        }
                    }
                    Err(_) => stop_open = false,
                }
                continue;
            }
            () = tokio::time::sleep_until(deadline.unwrap_or_else(far)), if deadline.is_some() => break,
            () = tokio::time::sleep(HOLD), if holding => {
                if let Some(r) = &mut redactor {
                    if cw.write_all(&r.finish()).await.is_err() {
                        break;
                    }
                }
                continue;
            }
        };
        let n = match read {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        total += n as u64;
        let out: Cow<'_, [u8]> = match &mut redactor {
            Some(r) => Cow::Owned(r.push(&buf[..n])),
            None => Cow::Borrowed(&buf[..n]),
        };
        if cw.write_all(&out).await.is_err() {
            break;
        }
    }
    if let Some(r) = &mut redactor {
        let _ = cw.write_all(&r.finish()).await;
    }
    total
}
