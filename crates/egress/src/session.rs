//! One governed sandbox's side of the proxy: its policy, the names its
//! resolver handed out, its counters, and the tasks serving its sockets.

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use superserver_wire::{EgressDecision, EgressEvent, EgressLogLevel, EgressSummary};
use tokio_util::sync::CancellationToken;

use crate::policy::Policy;
use crate::proxy::ProxyShared;

/// Who a session belongs to.
#[derive(Debug, Clone)]
pub struct SessionSpec {
    pub tenant: String,
    pub sandbox_id: String,
    pub policy: Policy,
    /// The custody secrets the sandbox holds (as placeholders).
    pub custody: Option<Arc<crate::custody::Custody>>,
    /// Content inspection of its HTTP requests (none: not inspected).
    pub dlp: Option<Arc<crate::dlp::Scanner>>,
}

/// First address handed out by a sandbox's resolver (198.18.0.0/15, a
/// range reserved for benchmarking that no real host uses).
const FIRST_ADDR: u32 = u32::from_be_bytes([198, 18, 0, 10]);
const LAST_ADDR: u32 = u32::from_be_bytes([198, 19, 255, 254]);

/// Names the resolver answered, and the address it gave each.
#[derive(Default)]
struct Names {
    by_addr: HashMap<Ipv4Addr, String>,
    by_name: HashMap<String, Ipv4Addr>,
    next: u32,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub connections: AtomicU64,
    pub denials: AtomicU64,
    pub dns_queries: AtomicU64,
    pub bytes_out: AtomicU64,
    pub bytes_in: AtomicU64,
}

/// State shared by a session's tasks.
pub(crate) struct SessionState {
    pub tenant: String,
    pub sandbox_id: String,
    pub policy: RwLock<Policy>,
    pub execution: Mutex<Option<String>>,
    names: Mutex<Names>,
    pub counters: Counters,
    hosts: Mutex<BTreeSet<String>>,
    pub proxy: Arc<ProxyShared>,
    pub custody: Option<Arc<crate::custody::Custody>>,
    pub dlp: Option<Arc<crate::dlp::Scanner>>,
    pub cancel: CancellationToken,
}

/// A governed sandbox's session. Dropping it stops serving the sandbox's
/// sockets and closes its connections.
pub struct Session {
    pub(crate) state: Arc<SessionState>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.state.cancel.cancel();
    }
}

impl Session {
    pub(crate) fn new(spec: SessionSpec, proxy: Arc<ProxyShared>) -> Self {
        Self {
            state: Arc::new(SessionState {
                tenant: spec.tenant,
                sandbox_id: spec.sandbox_id,
                policy: RwLock::new(spec.policy),
                execution: Mutex::new(None),
                names: Mutex::new(Names { next: FIRST_ADDR, ..Default::default() }),
                counters: Counters::default(),
                hosts: Mutex::new(BTreeSet::new()),
                proxy,
                custody: spec.custody,
                dlp: spec.dlp,
                cancel: CancellationToken::new(),
            }),
        }
    }

    /// Stops serving the sandbox's sockets and closes its connections.
    pub fn close(&self) {
        self.state.cancel.cancel();
    }

    /// The execution whose traffic this is, for the events that follow.
    pub fn set_execution(&self, id: Option<String>) {
        *self.state.execution.lock().unwrap_or_else(|e| e.into_inner()) = id;
    }

    /// Adds an allow rule to the sandbox's policy.
    pub fn allow(&self, rule: &superserver_wire::EgressRule) -> crate::Result<()> {
        self.state.policy.write().unwrap_or_else(|e| e.into_inner()).add_allow(rule)
    }

    /// What the sandbox reached so far.
    pub fn summary(&self) -> EgressSummary {
        let c = &self.state.counters;
        EgressSummary {
            hosts: self.state.hosts.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect(),
            connections: c.connections.load(Ordering::Relaxed),
            denials: c.denials.load(Ordering::Relaxed),
            dns_queries: c.dns_queries.load(Ordering::Relaxed),
            bytes_out: c.bytes_out.load(Ordering::Relaxed),
            bytes_in: c.bytes_in.load(Ordering::Relaxed),
        }
    }
}

/// An event in the making: what is known of a connection or query.
#[derive(Debug, Clone, Default)]
pub(crate) struct Draft {
    pub protocol: &'static str,
    pub name: Option<String>,
    pub address: Option<String>,
    pub port: Option<u16>,
    pub method: Option<String>,
    pub path: Option<String>,
    pub bytes_out: u64,
    pub bytes_in: u64,
    /// Kept whenever anything is logged, whatever the decision.
    pub notable: bool,
}

impl SessionState {
    /// The address handed out for `name` (the same one every time).
    pub fn address_for(&self, name: &str) -> Option<Ipv4Addr> {
        let mut n = self.names.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(a) = n.by_name.get(name) {
            return Some(*a);
        }
        if n.next > LAST_ADDR {
            return None;
        }
        let addr = Ipv4Addr::from(n.next);
        n.next += 1;
        n.by_name.insert(name.to_string(), addr);
        n.by_addr.insert(addr, name.to_string());
        Some(addr)
    }

    /// The name behind an address the resolver handed out.
    pub fn name_at(&self, addr: Ipv4Addr) -> Option<String> {
        self.names.lock().unwrap_or_else(|e| e.into_inner()).by_addr.get(&addr).cloned()
    }

    /// Whether `addr` is in the range the resolver hands out from.
    pub fn is_handout_range(addr: Ipv4Addr) -> bool {
        (FIRST_ADDR & 0xfffe_0000) == (u32::from(addr) & 0xfffe_0000)
    }

    /// Whether the sandbox holds custody secrets.
    pub fn holds_secrets(&self) -> bool {
        self.custody.as_ref().is_some_and(|c| !c.is_empty())
    }

    /// Raises an alert about the request `d`.
    pub fn alert(&self, kind: crate::proxy::AlertKind, d: &Draft, reason: &str) {
        let host = d.name.clone().or_else(|| d.address.clone()).unwrap_or_default();
        let destination = match d.port {
            Some(p) => format!("{host}:{p}"),
            None => host,
        };
        tracing::warn!(sandbox = %self.sandbox_id, %destination, %reason, "egress alert");
        self.proxy.sink.alert(crate::proxy::EgressAlert {
            kind,
            tenant: self.tenant.clone(),
            sandbox_id: self.sandbox_id.clone(),
            execution_id: self.execution.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            destination,
            method: d.method.clone(),
            path: d.path.clone(),
            reason: reason.to_string(),
        });
    }

    /// Counts a finished connection or query and records its event as the
    /// policy's log level says.
    pub fn finish(&self, d: Draft, decision: EgressDecision, rule: &str, started: Instant) {
        let c = &self.counters;
        if d.protocol == "dns" {
            c.dns_queries.fetch_add(1, Ordering::Relaxed);
        } else {
            c.connections.fetch_add(1, Ordering::Relaxed);
        }
        if decision == EgressDecision::Deny {
            c.denials.fetch_add(1, Ordering::Relaxed);
        } else if d.protocol != "dns" {
            if let Some(host) = d.name.clone().or_else(|| d.address.clone()) {
                self.hosts.lock().unwrap_or_else(|e| e.into_inner()).insert(host);
            }
        }
        c.bytes_out.fetch_add(d.bytes_out, Ordering::Relaxed);
        c.bytes_in.fetch_add(d.bytes_in, Ordering::Relaxed);
        let level = self.policy.read().unwrap_or_else(|e| e.into_inner()).log;
        let keep = match level {
            EgressLogLevel::Off => false,
            EgressLogLevel::Blocks => decision == EgressDecision::Deny || d.notable,
            EgressLogLevel::Full => true,
        };
        if !keep {
            return;
        }
        let event = EgressEvent {
            id: 0,
            at_ms: crate::now_ms(),
            tenant: self.tenant.clone(),
            sandbox_id: self.sandbox_id.clone(),
            execution_id: self.execution.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            protocol: d.protocol.to_string(),
            name: d.name,
            address: d.address,
            port: d.port,
            method: d.method,
            path: d.path,
            decision,
            rule: rule.to_string(),
            bytes_out: d.bytes_out,
            bytes_in: d.bytes_in,
            duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        };
        self.proxy.sink.record(event);
    }
}
