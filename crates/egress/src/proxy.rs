//! The proxy shared by every governed sandbox: configuration, where events
//! and approval requests go, and attaching a sandbox's sockets.

use std::collections::HashMap;
use std::net::{IpAddr, TcpListener, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use superserver_wire::EgressEvent;
use tokio::sync::oneshot;

use crate::session::{Session, SessionSpec};
use crate::upstream::{HostAddresses, Resolver};

/// How the proxy behaves.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Names answered from this table instead of the host's resolver (for
    /// air-gapped sites and tests). Their addresses are trusted: the guard
    /// against private and loopback addresses does not apply to them.
    pub hosts: HashMap<String, IpAddr>,
    /// Longest a connect or a name lookup upstream may take.
    pub connect_timeout: Duration,
    /// How long to wait for a client's first bytes before treating the
    /// connection as plain TCP (protocols where the server speaks first).
    pub first_bytes_timeout: Duration,
    /// How long a connection is held while a person decides (`on_unknown: ask`).
    pub approval_timeout: Duration,
    /// TLS interception (for hosts whose requests the policy decides by
    /// method or path); none without it.
    pub intercept: Option<(Arc<crate::tls::Authority>, crate::tls::Upstream)>,
    /// Intercept all TLS to named hosts (so content inspection sees it),
    /// not only where policy or custody needs it.
    pub intercept_all: bool,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            hosts: HashMap::new(),
            connect_timeout: Duration::from_secs(10),
            first_bytes_timeout: Duration::from_millis(300),
            approval_timeout: Duration::from_secs(30),
            intercept: None,
            intercept_all: false,
        }
    }
}

/// Where the proxy's audit events and alerts go.
pub trait EventSink: Send + Sync + 'static {
    /// Takes one event (its `id` is 0: the sink numbers them).
    fn record(&self, event: EgressEvent);
    /// Takes an alert: something a person should look at now.
    fn alert(&self, alert: EgressAlert) {
        let _ = alert;
    }
}

/// What an egress alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKind {
    /// A secret's placeholder was on its way to a host it is not bound to.
    SecretLeak,
    /// Content inspection found a secret in a request and blocked it.
    SecretInContent,
}

/// A request stopped for carrying a secret where it may not go.
#[derive(Debug, Clone)]
pub struct EgressAlert {
    pub kind: AlertKind,
    pub tenant: String,
    pub sandbox_id: String,
    pub execution_id: Option<String>,
    /// Where the request was going (name or address) and its port.
    pub destination: String,
    pub method: Option<String>,
    pub path: Option<String>,
    /// Why it was stopped (names the secret or the rule, never a value).
    pub reason: String,
}

/// A connection held for a person's decision.
#[derive(Debug, Clone)]
pub struct ApprovalAsk {
    pub tenant: String,
    pub sandbox_id: String,
    pub execution_id: Option<String>,
    pub protocol: String,
    pub name: Option<String>,
    pub address: Option<String>,
    pub port: u16,
    pub method: Option<String>,
    pub path: Option<String>,
}

/// A person's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalAnswer {
    AllowOnce,
    /// Allow, and add the destination to the sandbox's policy.
    AllowAlways,
    Deny,
}

/// Where approval requests go. The answer carries who gave it.
pub trait Approver: Send + Sync + 'static {
    fn ask(&self, ask: ApprovalAsk) -> oneshot::Receiver<(ApprovalAnswer, String)>;
}

/// What intercepting TLS takes.
pub(crate) struct Intercept {
    pub server: Arc<rustls::ServerConfig>,
    pub upstream: crate::tls::Upstream,
}

pub(crate) struct ProxyShared {
    pub cfg: ProxyConfig,
    pub tls: Option<Arc<Intercept>>,
    pub resolver: Resolver,
    pub host_addrs: HostAddresses,
    pub sink: Arc<dyn EventSink>,
    pub approver: Option<Arc<dyn Approver>>,
}

/// The egress proxy. Cheap to clone.
#[derive(Clone)]
pub struct Proxy {
    shared: Arc<ProxyShared>,
}

impl Proxy {
    pub fn new(
        cfg: ProxyConfig,
        sink: Arc<dyn EventSink>,
        approver: Option<Arc<dyn Approver>>,
    ) -> Result<Self, crate::tls::TlsError> {
        let resolver = Resolver { table: cfg.hosts.clone(), timeout: cfg.connect_timeout };
        let tls = match &cfg.intercept {
            Some((authority, upstream)) => {
                Some(Arc::new(Intercept { server: authority.server_config()?, upstream: upstream.clone() }))
            }
            None => None,
        };
        let shared = ProxyShared { cfg, tls, resolver, host_addrs: HostAddresses::default(), sink, approver };
        Ok(Self { shared: Arc::new(shared) })
    }

    /// Starts serving a governed sandbox's proxy listener and resolver
    /// socket (descriptors the caller may have duplicated; they are closed
    /// when the session ends). Must be called within a tokio runtime.
    pub fn attach(&self, tcp: TcpListener, dns: UdpSocket, spec: SessionSpec) -> std::io::Result<Session> {
        tcp.set_nonblocking(true)?;
        dns.set_nonblocking(true)?;
        let tcp = tokio::net::TcpListener::from_std(tcp)?;
        let dns = tokio::net::UdpSocket::from_std(dns)?;
        let session = Session::new(spec, self.shared.clone());
        let state = session.state.clone();
        tokio::spawn(crate::resolver::serve(state.clone(), dns));
        tokio::spawn(crate::conn::serve(state, tcp));
        Ok(session)
    }
}
