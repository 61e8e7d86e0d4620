//! One TCP connection from a governed sandbox: what it is for (the name
//! its address was handed out for, its TLS server name or HTTP `Host`),
//! whether the policy lets it through, and relaying it if so.
//!
//! A connection to the listener's own address is an explicit proxy request
//! (`HTTP_PROXY`): `CONNECT host:port` or an absolute-form HTTP request.
//! Every other connection was redirected there by the namespace's rules and
//! carries its original destination.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use superserver_wire::{EgressDecision, EgressRule, OnUnknown};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

mod carry;
mod intercept;

use crate::http::{self, Parsed};
use crate::policy::{is_dns_name, Target, Verdict};
use crate::proxy::{ApprovalAnswer, ApprovalAsk};
use crate::session::{Draft, SessionState};
use crate::sni::{self, Hello};
use crate::upstream::{connect, is_special};

/// Largest first flight read to classify a connection.
const MAX_FIRST: usize = 64 * 1024;

/// Accepts the sandbox's connections until the session ends.
pub(crate) async fn serve(state: Arc<SessionState>, listener: TcpListener) {
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = state.cancel.cancelled() => return,
        };
        match accepted {
            Ok((stream, _)) => {
                let st = state.clone();
                tokio::spawn(async move {
                    let cancel = st.cancel.clone();
                    cancel.run_until_cancelled(handle(st, stream)).await;
                });
            }
            // Out of descriptors or memory: let the pressure pass.
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
}

async fn handle(state: Arc<SessionState>, client: TcpStream) {
    let started = Instant::now();
    let _ = client.set_nodelay(true);
    let Ok(orig) = original_destination(&client) else { return };
    let explicit = client.local_addr().is_ok_and(|l| l == SocketAddr::V4(orig));
    let c = Conn { state, started, draft: Draft::default(), client, buf: BytesMut::new() };
    if explicit {
        c.explicit().await
    } else {
        c.transparent(orig).await
    }
}

/// The destination a redirected connection was headed for.
fn original_destination(s: &TcpStream) -> std::io::Result<SocketAddrV4> {
    let sin = nix::sys::socket::getsockopt(s, nix::sys::socket::sockopt::OriginalDst)?;
    Ok(SocketAddrV4::new(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)), u16::from_be(sin.sin_port)))
}

/// What the first bytes of a connection are.
enum Kind {
    Tls(Option<String>),
    Http(http::Head),
    /// Anything else, or nothing yet (the server speaks first).
    Raw,
}

/// Where an allowed connection goes.
struct Dest {
    name: Option<String>,
    ip: Option<Ipv4Addr>,
    port: u16,
}

struct Conn {
    state: Arc<SessionState>,
    started: Instant,
    draft: Draft,
    client: TcpStream,
    /// Bytes read from the client and not yet forwarded.
    buf: BytesMut,
}

impl Conn {
    async fn transparent(mut self, orig: SocketAddrV4) {
        let (ip, port) = (*orig.ip(), orig.port());
        let pinned = self.state.name_at(ip);
        self.draft = Draft {
            protocol: "tcp",
            name: pinned.clone(),
            address: Some(ip.to_string()),
            port: Some(port),
            ..Default::default()
        };
        if pinned.is_none() && SessionState::is_handout_range(ip) {
            return self.deny("address not handed out by the resolver", None).await;
        }
        let kind = self.classify().await;
        let mut target = Target {
            name: pinned.as_deref(),
            ip: pinned.is_none().then_some(ip),
            port: Some(port),
            ..Default::default()
        };
        let mut head = None;
        match &kind {
            Kind::Tls(sni) => {
                self.draft.protocol = "tls";
                if let (Some(sni), Some(name)) = (sni, &pinned) {
                    if sni != name {
                        let why = format!("domain fronting: TLS server name {sni} on a connection to {name}");
                        return self.deny(&why, None).await;
                    }
                }
            }
            Kind::Http(h) => {
                self.draft.protocol = "http";
                self.draft.method = Some(h.method.clone());
                self.draft.path = Some(h.path.clone());
                if let (Some(host), Some(name)) = (&h.host, &pinned) {
                    if host != name {
                        let why = format!("domain fronting: Host {host} on a connection to {name}");
                        return self.deny(&why, Some(403)).await;
                    }
                }
                head = Some(h.clone());
            }
            Kind::Raw => {}
        }
        if let Some(h) = &head {
            target.method = Some(&h.method);
            target.path = Some(&h.path);
        }
        if matches!(kind, Kind::Tls(_)) && self.state.holds_secrets() && pinned.is_none() {
            let why = "a sandbox holding secrets may only use TLS to a name the proxy can inspect";
            return self.deny(why, None).await;
        }
        if matches!(kind, Kind::Tls(_)) && self.interceptable(pinned.as_deref()) {
            // Decided request by request, inside.
            let dest = Dest { name: pinned.clone(), ip: None, port };
            return self.intercept(dest).await;
        }
        let rule = match self.decide(&target).await {
            Ok(rule) => rule,
            Err(why) => {
                let status = matches!(kind, Kind::Http(_)).then_some(403);
                return self.deny(&why, status).await;
            }
        };
        let direct = target.ip.is_some();
        let dest = Dest { name: pinned.clone(), ip: Some(ip).filter(|_| direct), port };
        let Some(upstream) = self.open(&dest, head.is_some()).await else { return };
        self.relay(upstream, head.is_some(), false, &dest, &rule).await;
    }

    /// An explicit proxy request: `CONNECT` or an absolute-form request.
    async fn explicit(mut self) {
        self.draft = Draft { protocol: "http", ..Default::default() };
        let head = match self.read_head().await {
            Some(h) => h,
            None => return,
        };
        let (authority, default_port) = if head.method == "CONNECT" {
            (head.target.clone(), 443)
        } else if let Some(rest) = head.target.strip_prefix("http://") {
            (rest.split('/').next().unwrap_or("").to_string(), 80)
        } else {
            let msg = "superserver egress: send an absolute URL or CONNECT to this proxy";
            let _ = self.client.write_all(&http::refusal(400, "Bad Request", msg)).await;
            return;
        };
        let host = http::strip_port(&authority).to_ascii_lowercase();
        let port = authority
            .strip_prefix(&format!("{}:", http::strip_port(&authority)))
            .and_then(|p| p.parse().ok())
            .unwrap_or(default_port);
        let ip = host.parse::<Ipv4Addr>().ok();
        self.draft.name = ip.is_none().then(|| host.clone());
        self.draft.address = ip.map(|i| i.to_string());
        self.draft.port = Some(port);
        if ip.is_none() && !is_dns_name(&host) {
            return self.deny(&format!("`{host}` is not a host name"), Some(400)).await;
        }
        let name = ip.is_none().then_some(host.clone());
        let dest = Dest { name: name.clone(), ip, port };
        if head.method == "CONNECT" {
            self.draft.protocol = "tcp";
            let target = Target { name: name.as_deref(), ip, port: Some(port), ..Default::default() };
            if self.interceptable(name.as_deref()) {
                bytes::Buf::advance(&mut self.buf, head.len);
                if self.client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await.is_err() {
                    return;
                }
                return match self.classify().await {
                    Kind::Tls(sni) if sni.is_none() || sni == name => self.intercept(dest).await,
                    _ => self.deny("only TLS is relayed to a host whose requests are inspected", None).await,
                };
            }
            let rule = match self.decide(&target).await {
                Ok(rule) => rule,
                Err(why) => return self.deny(&why, Some(403)).await,
            };
            let Some(upstream) = self.open(&dest, false).await else { return };
            bytes::Buf::advance(&mut self.buf, head.len);
            if self.client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await.is_err() {
                return;
            }
            // Inside the tunnel the same checks hold as for a redirected connection.
            let kind = self.classify().await;
            if matches!(kind, Kind::Tls(_)) && self.state.holds_secrets() {
                self.draft.protocol = "tls";
                let why = "a sandbox holding secrets may only use TLS to a name the proxy can inspect";
                return self.deny(why, None).await;
            }
            match &kind {
                Kind::Tls(Some(sni)) if name.as_ref().is_some_and(|n| n != sni) => {
                    self.draft.protocol = "tls";
                    let why = format!("domain fronting: TLS server name {sni} in a tunnel to {host}");
                    return self.deny(&why, None).await;
                }
                Kind::Tls(_) => self.draft.protocol = "tls",
                Kind::Http(h) if h.host.as_ref().is_some_and(|x| Some(x) != name.as_ref()) => {
                    self.draft.protocol = "http";
                    let why =
                        format!("domain fronting: Host {} in a tunnel to {host}", h.host.as_deref().unwrap_or(""));
                    return self.deny(&why, Some(403)).await;
                }
                _ => {}
            }
            let is_http = matches!(kind, Kind::Http(_));
            return self.relay(upstream, is_http, false, &dest, &rule).await;
        }
        self.draft.method = Some(head.method.clone());
        self.draft.path = Some(head.path.clone());
        let target =
            Target { name: name.as_deref(), ip, port: Some(port), method: Some(&head.method), path: Some(&head.path) };
        let rule = match self.decide(&target).await {
            Ok(rule) => rule,
            Err(why) => return self.deny(&why, Some(403)).await,
        };
        let Some(upstream) = self.open(&dest, true).await else { return };
        self.relay(upstream, true, true, &dest, &rule).await;
    }

    /// Reads the client's first flight and says what it is.
    async fn classify(&mut self) -> Kind {
        let wait = self.state.proxy.cfg.first_bytes_timeout;
        match tokio::time::timeout(wait, http::fill(&mut self.client, &mut self.buf)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => return Kind::Raw,
        }
        loop {
            if sni::is_tls(&self.buf) || self.buf.first() == Some(&0x16) {
                match sni::client_hello(&self.buf) {
                    Hello::Complete(name) => return Kind::Tls(name),
                    Hello::NotTls => return Kind::Raw,
                    Hello::Partial => {}
                }
            } else if http::looks_like_http(&self.buf) {
                match http::parse(&self.buf) {
                    Parsed::Complete(h) => return Kind::Http(h),
                    Parsed::Invalid(_) => return Kind::Raw,
                    Parsed::Partial => {}
                }
            } else {
                return Kind::Raw;
            }
            if self.buf.len() >= MAX_FIRST || !self.read_more().await {
                return Kind::Raw;
            }
        }
    }

    async fn read_more(&mut self) -> bool {
        let wait = self.state.proxy.cfg.connect_timeout;
        matches!(tokio::time::timeout(wait, http::fill(&mut self.client, &mut self.buf)).await, Ok(Ok(n)) if n > 0)
    }

    /// The request head at the start of the buffer (explicit proxy use).
    async fn read_head(&mut self) -> Option<http::Head> {
        loop {
            match http::parse(&self.buf) {
                Parsed::Complete(h) => return Some(h),
                Parsed::Invalid(why) => {
                    let msg = format!("superserver egress: {why}");
                    let _ = self.client.write_all(&http::refusal(400, "Bad Request", &msg)).await;
                    return None;
                }
                Parsed::Partial if !self.read_more().await => return None,
                Parsed::Partial => {}
            }
        }
    }

    /// The policy's decision, asking a person when it has none and the
    /// policy says so. `Ok(rule)` to allow, `Err(reason)` to deny.
    async fn decide(&self, target: &Target<'_>) -> Result<String, String> {
        decide(&self.state, self.draft.protocol, target).await
    }
}

/// The policy's decision on `target`, asking a person when it has none and
/// the policy says so.
async fn decide(state: &SessionState, protocol: &str, target: &Target<'_>) -> Result<String, String> {
    let (verdict, on_unknown) = {
        let p = state.policy.read().unwrap_or_else(|e| e.into_inner());
        (p.decide(target), p.on_unknown)
    };
    match verdict {
        Verdict::Allow(rule) => Ok(rule),
        Verdict::Deny(rule) => Err(rule),
        Verdict::Unknown if on_unknown == OnUnknown::Deny => Err("default deny".into()),
        Verdict::Unknown => ask(state, protocol, target).await,
    }
}

async fn ask(state: &SessionState, protocol: &str, target: &Target<'_>) -> Result<String, String> {
    {
        let Some(approver) = state.proxy.approver.clone() else {
            return Err("no approver configured".into());
        };
        let ask = ApprovalAsk {
            tenant: state.tenant.clone(),
            sandbox_id: state.sandbox_id.clone(),
            execution_id: state.execution.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            protocol: protocol.to_string(),
            name: target.name.map(str::to_string),
            address: target.ip.map(|i| i.to_string()),
            port: target.port.unwrap_or(0),
            method: target.method.map(str::to_string),
            path: target.path.map(str::to_string),
        };
        let timeout = state.proxy.cfg.approval_timeout;
        let answer = tokio::time::timeout(timeout, approver.ask(ask)).await;
        match answer {
            Ok(Ok((ApprovalAnswer::AllowOnce, who))) => Ok(format!("approved once by {who}")),
            Ok(Ok((ApprovalAnswer::AllowAlways, who))) => {
                let host = target.name.map(str::to_string).or(target.ip.map(|i| i.to_string())).unwrap_or_default();
                let rule = EgressRule::Short(format!("{host}:{}", target.port.unwrap_or(0)));
                let mut p = state.policy.write().unwrap_or_else(|e| e.into_inner());
                if let Err(e) = p.add_allow(&rule) {
                    tracing::warn!(error = %e, "an approved destination could not become a rule");
                }
                Ok(format!("approved always by {who}"))
            }
            Ok(Ok((ApprovalAnswer::Deny, who))) => Err(format!("denied by {who}")),
            Ok(Err(_)) => Err("approval withdrawn".into()),
            Err(_) => Err("approval timed out".into()),
        }
    }
}

impl Conn {
    /// Resolves and connects to an allowed destination; on failure the
    /// client is told (HTTP) or the connection closed, and the event kept.
    async fn open(&mut self, dest: &Dest, http: bool) -> Option<TcpStream> {
        let shared = &self.state.proxy;
        let addr = match (&dest.name, dest.ip) {
            (Some(name), _) => match shared.resolver.resolve(name, dest.port).await {
                Ok(r) if r.configured => r.addr,
                Ok(r) => {
                    let ip = r.addr.ip();
                    let explicit = match ip {
                        IpAddr::V4(v4) => self.explicitly_allowed(v4, dest.port),
                        IpAddr::V6(_) => false,
                    };
                    if (is_special(ip) || shared.host_addrs.contains(ip)) && !explicit {
                        self.draft.address = Some(ip.to_string());
                        let why = format!("special address: {name} resolves to {ip}");
                        self.deny(&why, http.then_some(403)).await;
                        return None;
                    }
                    r.addr
                }
                Err(e) => {
                    self.fail(&e, http).await;
                    return None;
                }
            },
            (None, Some(ip)) => {
                let special = is_special(IpAddr::V4(ip)) || shared.host_addrs.contains(IpAddr::V4(ip));
                if special && !self.explicitly_allowed(ip, dest.port) {
                    self.deny(&format!("special address {ip}"), http.then_some(403)).await;
                    return None;
                }
                SocketAddr::from((ip, dest.port))
            }
            (None, None) => return None,
        };
        match connect(addr, shared.cfg.connect_timeout).await {
            Ok(s) => Some(s),
            Err(e) => {
                self.fail(&e, http).await;
                None
            }
        }
    }

    fn explicitly_allowed(&self, ip: Ipv4Addr, port: u16) -> bool {
        self.state.policy.read().unwrap_or_else(|e| e.into_inner()).allows_address_explicitly(ip, port).is_some()
    }

    /// Carries the connection through; HTTP requests after the first are
    /// decided one by one (and, sent to the proxy in absolute form, passed
    /// on in origin form).
    async fn relay(self, upstream: TcpStream, is_http: bool, absolute: bool, dest: &Dest, rule: &str) {
        let Conn { state, started, draft, client, buf } = self;
        let (cr, cw) = client.into_split();
        let cr = BufReader::with_capacity(64 * 1024, cr);
        let (ur, uw) = upstream.into_split();
        carry::carry(&state, (cr, cw), (ur, uw), buf, is_http, absolute, dest, draft, rule, started).await;
    }

    /// Records a denial and ends the connection, with a message for HTTP.
    async fn deny(&mut self, why: &str, status: Option<u16>) {
        if let Some(status) = status {
            let target = self.draft.name.clone().or(self.draft.address.clone()).unwrap_or_default();
            let msg = format!("superserver egress: {target} is not allowed ({why})");
            let reason = if status == 400 { "Bad Request" } else { "Forbidden" };
            let _ = self.client.write_all(&http::refusal(status, reason, &msg)).await;
        }
        let _ = self.client.shutdown().await;
        self.state.finish(std::mem::take(&mut self.draft), EgressDecision::Deny, why, self.started);
    }

    /// An allowed connection that could not be made.
    async fn fail(&mut self, why: &str, http: bool) {
        if http {
            let msg = format!("superserver egress: {why}");
            let _ = self.client.write_all(&http::refusal(502, "Bad Gateway", &msg)).await;
        }
        let _ = self.client.shutdown().await;
        let rule = format!("upstream failed: {why}");
        self.state.finish(std::mem::take(&mut self.draft), EgressDecision::Allow, &rule, self.started);
    }
}

/// The decision on a later request of a kept-alive HTTP connection.
fn request_verdict(state: &SessionState, h: &http::Head, dest: &Dest) -> Result<(), String> {
    if let (Some(host), Some(name)) = (&h.host, &dest.name) {
        if host != name {
            return Err(format!("domain fronting: Host {host} on a connection to {name}"));
        }
    }
    let target = Target {
        name: dest.name.as_deref(),
        ip: dest.ip,
        port: Some(dest.port),
        method: Some(&h.method),
        path: Some(&h.path),
    };
    match state.policy.read().unwrap_or_else(|e| e.into_inner()).decide(&target) {
        Verdict::Allow(_) => Ok(()),
        Verdict::Deny(rule) => Err(rule),
        Verdict::Unknown => Err("default deny".into()),
    }
}
