//! Governed egress of `policy`-mode sandboxes: the proxy's configuration,
//! each sandbox's session, the audit trail (stored in batches, streamed
//! live) and the approvals of held connections.

mod approvals;
pub mod config;
mod secrets;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use superserver_egress::{AlertKind, EgressAlert, EventSink, Policy, Proxy, ProxyConfig, Session, SessionSpec};
use superserver_runtime::{Network, Sandbox};
use superserver_store::EgressFilter;
use superserver_wire::{
    Approval, ApprovalDecision, EgressDecision, EgressEvent, NetworkMode, NetworkSpec, PlanLimits, Role,
};
use tokio::sync::{broadcast, mpsc};

pub use approvals::Approvals;
pub use config::{DlpConfig, EgressConfig};

use crate::error::{CoreError, Result};
use crate::service::{now_ms, Service};
use crate::tenancy::Caller;

/// Events waiting to be stored; beyond this the proxy's events are dropped
/// (and counted) rather than slowing sandboxes down.
const QUEUE: usize = 65_536;
/// Most events stored in one write.
const BATCH: usize = 1024;

/// The egress state of the service.
pub(crate) struct Egress {
    pub proxy: Proxy,
    pub keyring: secrets::Keyring,
    /// Content inspection's rules (none: inspection off).
    pub dlp_rules: Option<Arc<superserver_egress::DlpRules>>,
    /// Scanners per tenant (the rules and the tenant's custody values),
    /// made on first use and dropped when the tenant's secrets change.
    scanners: std::sync::Mutex<std::collections::HashMap<String, Arc<superserver_egress::Scanner>>>,
    /// Requests the proxy stopped for carrying secrets, to become alerts.
    alerts: std::sync::Mutex<Option<mpsc::Receiver<EgressAlert>>>,
    pub approvals: Arc<Approvals>,
    pub events: broadcast::Sender<EgressEvent>,
    pub dropped: Arc<AtomicU64>,
    queue: std::sync::Mutex<Option<mpsc::Receiver<EgressEvent>>>,
}

struct Sink {
    tx: mpsc::Sender<EgressEvent>,
    alerts: mpsc::Sender<EgressAlert>,
    dropped: Arc<AtomicU64>,
}

impl EventSink for Sink {
    fn record(&self, event: EgressEvent) {
        if self.tx.try_send(event).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn alert(&self, alert: EgressAlert) {
        if self.alerts.try_send(alert).is_err() {
            tracing::error!("egress alerts are not being taken; one was dropped");
        }
    }
}

/// Where governed sandboxes find the interception authority: the system
/// bundle (with it appended) and the certificate alone.
pub(crate) const SANDBOX_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
pub(crate) const SANDBOX_CA_FILE: &str = "/etc/superserver-egress-ca.pem";

impl Egress {
    /// The proxy with its interception authority (kept in `data_dir`); the
    /// authority is added to governed sandboxes' `/etc` under `run_dir`.
    pub fn new(cfg: &EgressConfig, data_dir: &std::path::Path, run_dir: &std::path::Path) -> Result<Self> {
        let config_err =
            |e: superserver_egress::tls::TlsError| CoreError::Config(format!("egress TLS interception: {e}"));
        let authority = superserver_egress::tls::Authority::load_or_create(data_dir).map_err(config_err)?;
        let upstream = superserver_egress::tls::Upstream::new(cfg.extra_ca_file.as_deref()).map_err(config_err)?;
        let etc = run_dir.join("etc-net");
        std::fs::create_dir_all(etc.join("ssl/certs"))
            .map_err(|e| CoreError::Config(format!("cannot prepare the sandboxes' CA bundle: {e}")))?;
        authority
            .write_bundle(
                std::path::Path::new(SANDBOX_CA_BUNDLE),
                &etc.join(SANDBOX_CA_BUNDLE.trim_start_matches("/etc/")),
            )
            .map_err(config_err)?;
        std::fs::write(etc.join(SANDBOX_CA_FILE.trim_start_matches("/etc/")), authority.ca_pem())
            .map_err(|e| CoreError::Config(format!("cannot write the sandboxes' CA file: {e}")))?;
        let key_file = cfg.secrets_key_file.clone().unwrap_or_else(|| data_dir.join("secrets.key"));
        let keyring = secrets::Keyring::load_or_create(&key_file)?;
        let (alerts_tx, alerts_rx) = mpsc::channel(1024);
        let (tx, rx) = mpsc::channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let approvals = Arc::new(Approvals::new(Duration::from_secs(cfg.approval_timeout_seconds)));
        let proxy_cfg = ProxyConfig {
            hosts: cfg.hosts.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            connect_timeout: Duration::from_millis(cfg.connect_timeout_ms),
            approval_timeout: Duration::from_secs(cfg.approval_timeout_seconds),
            intercept: Some((authority, upstream)),
            intercept_all: cfg.intercept_all_tls,
            ..Default::default()
        };
        let sink = Arc::new(Sink { tx, alerts: alerts_tx, dropped: dropped.clone() });
        let approver: Arc<dyn superserver_egress::Approver> = approvals.clone();
        Ok(Self {
            proxy: Proxy::new(proxy_cfg, sink, Some(approver)).map_err(config_err)?,
            keyring,
            dlp_rules: cfg.dlp.rules()?.map(Arc::new),
            scanners: std::sync::Mutex::default(),
            alerts: std::sync::Mutex::new(Some(alerts_rx)),
            approvals,
            events: broadcast::channel(1024).0,
            dropped,
            queue: std::sync::Mutex::new(Some(rx)),
        })
    }
}

impl Egress {
    /// Drops a tenant's scanner after its secrets changed.
    pub fn forget_tenant_secrets(&self, tenant_id: &str) {
        self.scanners.lock().unwrap_or_else(|e| e.into_inner()).remove(tenant_id);
    }
}

/// The proxy settings of a governed sandbox's commands: for clients that
/// honour them (everything else is redirected anyway).
pub(crate) fn proxy_env() -> Vec<(String, String)> {
    let url = format!("http://127.0.0.1:{}", superserver_runtime::network::PROXY_PORT);
    let no_proxy = "localhost,127.0.0.1,::1".to_string();
    vec![
        ("HTTP_PROXY".into(), url.clone()),
        ("HTTPS_PROXY".into(), url.clone()),
        ("http_proxy".into(), url.clone()),
        ("https_proxy".into(), url),
        ("NO_PROXY".into(), no_proxy.clone()),
        ("no_proxy".into(), no_proxy),
        // Intercepted HTTPS is signed by the installation's authority, which
        // the system bundle of a governed sandbox includes.
        ("SSL_CERT_FILE".into(), SANDBOX_CA_BUNDLE.into()),
        ("REQUESTS_CA_BUNDLE".into(), SANDBOX_CA_BUNDLE.into()),
        ("CURL_CA_BUNDLE".into(), SANDBOX_CA_BUNDLE.into()),
        ("NODE_EXTRA_CA_CERTS".into(), SANDBOX_CA_FILE.into()),
    ]
}

/// Which events to list (`GET /v1/egress/events`).
#[derive(Debug, Clone, Default)]
pub struct EgressQuery {
    pub sandbox: Option<String>,
    pub execution: Option<String>,
    pub decision: Option<EgressDecision>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub after_id: Option<i64>,
    pub limit: usize,
    /// The most recent `limit` (still oldest first).
    pub newest: bool,
}

impl Service {
    /// The policy a request's `network` asks for, checked against the plan;
    /// `None` for no network.
    pub(crate) fn requested_policy(
        &self,
        caller: &Caller,
        plan: &PlanLimits,
        spec: Option<&NetworkSpec>,
    ) -> Result<Option<Policy>> {
        let spec = spec.or(caller.tenant.default_network.as_ref());
        let Some(spec) = spec.filter(|s| s.mode == NetworkMode::Policy) else {
            if spec.is_some_and(|s| !s.allow.is_empty() || !s.deny.is_empty()) {
                return Err(CoreError::InvalidRequest(
                    "network.allow and network.deny need network.mode = \"policy\"".into(),
                ));
            }
            return Ok(None);
        };
        caller.require_feature(plan.network, "network access")?;
        Policy::compile(spec).map(Some).map_err(|e| CoreError::InvalidRequest(format!("network: {e}")))
    }

    /// The runtime network of a sandbox with `policy`.
    pub(crate) fn network_of(policy: &Option<Policy>) -> Network {
        if policy.is_some() {
            Network::Governed
        } else {
            Network::None
        }
    }

    /// Starts governing `sb`'s traffic with `policy`.
    pub(crate) fn attach_egress(
        &self,
        sb: &Sandbox,
        tenant_id: &str,
        policy: Policy,
        custody: Option<Arc<superserver_egress::custody::Custody>>,
        dlp: Option<Arc<superserver_egress::Scanner>>,
    ) -> Result<Session> {
        let net = sb
            .governed_net()
            .ok_or_else(|| CoreError::Internal("a governed sandbox came without its network".into()))?;
        let dup = |e: std::io::Error| CoreError::Internal(format!("egress sockets: {e}"));
        let tcp = net.tcp.try_clone().map_err(dup)?;
        let dns = net.dns.try_clone().map_err(dup)?;
        let spec = SessionSpec { tenant: tenant_id.to_string(), sandbox_id: sb.id.clone(), policy, custody, dlp };
        self.inner.egress.proxy.attach(tcp, dns, spec).map_err(dup)
    }

    /// Stores the proxy's events in batches and passes them on to live
    /// followers; prunes old ones.
    pub(crate) fn start_egress(&self) {
        let rx = self.inner.egress.queue.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(mut rx) = rx {
            let svc = self.clone();
            tokio::spawn(async move {
                let mut batch = Vec::with_capacity(BATCH);
                while rx.recv_many(&mut batch, BATCH).await > 0 {
                    match svc.inner.store.insert_egress_events(std::mem::take(&mut batch)).await {
                        Ok(stored) => {
                            for e in stored {
                                let _ = svc.inner.egress.events.send(e);
                            }
                        }
                        Err(e) => tracing::error!(error = %e, "cannot store egress events"),
                    }
                }
            });
        }
        let alerts = self.inner.egress.alerts.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(mut alerts) = alerts {
            let svc = self.clone();
            tokio::spawn(async move {
                while let Some(a) = alerts.recv().await {
                    svc.raise_egress_alert(a).await;
                }
            });
        }
        let svc = self.clone();
        tokio::spawn(async move {
            let keep = Duration::from_secs(svc.inner.cfg.egress.retention_days * 86_400);
            loop {
                tokio::select! {
                    () = svc.inner.cancel.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(3600)) => {}
                }
                let before = now_ms() - keep.as_millis() as i64;
                if let Err(e) = svc.inner.store.prune_egress_events(before).await {
                    tracing::warn!(error = %e, "cannot prune egress events");
                }
            }
        });
    }

    /// The content scanner for a tenant's sandboxes: the rules, and the
    /// values of the tenant's custody secrets in all their encodings.
    pub(crate) async fn dlp_scanner(&self, tenant_id: &str) -> Result<Option<Arc<superserver_egress::Scanner>>> {
        let egress = &self.inner.egress;
        let Some(rules) = egress.dlp_rules.clone() else { return Ok(None) };
        if let Some(s) = egress.scanners.lock().unwrap_or_else(|e| e.into_inner()).get(tenant_id) {
            return Ok(Some(s.clone()));
        }
        let mut values = Vec::new();
        for rec in self.inner.store.list_secrets(Some(tenant_id.to_string())).await? {
            let value = egress.keyring.open(tenant_id, &rec.name, &rec.sealed)?;
            values.push(superserver_egress::CustodySecret::new(rec.name, value));
        }
        let scanner = superserver_egress::Scanner::new(rules, &values)
            .map_err(|e| CoreError::Internal(format!("content inspection: {e}")))?;
        let scanner = Arc::new(scanner);
        egress.scanners.lock().unwrap_or_else(|e| e.into_inner()).insert(tenant_id.to_string(), scanner.clone());
        Ok(Some(scanner))
    }

    /// Turns a request the proxy stopped into an alert about its sandbox.
    async fn raise_egress_alert(&self, a: EgressAlert) {
        let what = match a.kind {
            AlertKind::SecretLeak => "sent a secret's placeholder to a host the secret is not bound to",
            AlertKind::SecretInContent => "sent a secret found by content inspection",
        };
        let request = match (&a.method, &a.path) {
            (Some(m), Some(p)) => format!(" ({m} {p})"),
            _ => String::new(),
        };
        let tenant = self.inner.auth.tenant(&a.tenant).map_or_else(|| a.tenant.clone(), |t| t.name.clone());
        let mut context = superserver_wire::AlertContext::default();
        context.notes.push(format!("tenant: {tenant}"));
        if let Some(x) = &a.execution_id {
            context.notes.push(format!("execution: {x}"));
        }
        context.notes.push(format!("blocked: {}", a.reason));
        let signal = crate::alerts::AlertSignal {
            kind: crate::alerts::SignalKind::Egress,
            service: format!("sandbox:{}", a.sandbox_id),
            summary: format!("sandbox {} {what}: {}{request}; the request was blocked", a.sandbox_id, a.destination),
            context,
        };
        if let Err(e) = self.raise(signal).await {
            tracing::error!(error = %e, "cannot raise an egress alert");
        }
    }

    /// `GET /v1/egress/events`: the caller's tenant's (every tenant's for an
    /// admin), oldest first.
    pub async fn egress_events(&self, caller: &Caller, q: EgressQuery) -> Result<Vec<EgressEvent>> {
        caller.require(Role::Viewer, "reading egress events")?;
        let filter = EgressFilter {
            tenant_id: (!caller.is_admin()).then(|| caller.tenant_id().to_string()),
            sandbox_id: q.sandbox,
            execution_id: q.execution,
            decision: q.decision,
            from_ms: q.from_ms,
            to_ms: q.to_ms,
            after_id: q.after_id,
            limit: q.limit.clamp(1, 10_000),
            newest: q.newest,
        };
        Ok(self.inner.store.list_egress_events(filter).await?)
    }

    /// Hosts reached and refused per sandbox over the last `hours`.
    pub async fn egress_hosts(&self, caller: &Caller, hours: i64) -> Result<Vec<superserver_store::EgressHostRow>> {
        caller.require(Role::Viewer, "reading egress events")?;
        let tenant = (!caller.is_admin()).then(|| caller.tenant_id().to_string());
        Ok(self.inner.store.egress_hosts(tenant, now_ms() - hours * 3_600_000, 500).await?)
    }

    /// Egress events as they are stored, unfiltered (for the dashboard).
    pub fn subscribe_egress(&self) -> broadcast::Receiver<EgressEvent> {
        self.inner.egress.events.subscribe()
    }

    /// `follow=true`: the stored events matching `q` (the most recent
    /// `q.limit` when no `after_id` is given), then new ones as they are
    /// stored, without gaps or repeats. Ends when the receiver is dropped.
    pub async fn follow_egress(&self, caller: &Caller, q: EgressQuery) -> Result<mpsc::Receiver<EgressEvent>> {
        caller.require(Role::Viewer, "reading egress events")?;
        let mut live = self.inner.egress.events.subscribe();
        let newest = q.after_id.is_none();
        let backlog = self.egress_events(caller, EgressQuery { to_ms: None, newest, ..q.clone() }).await?;
        let (tx, rx) = mpsc::channel(256);
        let tenant = (!caller.is_admin()).then(|| caller.tenant_id().to_string());
        let cancel = self.inner.cancel.clone();
        tokio::spawn(async move {
            let mut last = q.after_id.unwrap_or(0);
            for e in backlog {
                last = last.max(e.id);
                if tx.send(e).await.is_err() {
                    return;
                }
            }
            loop {
                let e = tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tx.closed() => return,
                    e = live.recv() => e,
                };
                let e = match e {
                    Ok(e) => e,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(skipped = n, "an egress follower fell behind");
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                let wanted = e.id > last
                    && tenant.as_ref().is_none_or(|t| *t == e.tenant)
                    && q.sandbox.as_ref().is_none_or(|s| *s == e.sandbox_id)
                    && q.execution.as_ref().is_none_or(|x| Some(x) == e.execution_id.as_ref())
                    && q.decision.is_none_or(|d| d == e.decision);
                if wanted {
                    last = e.id;
                    if tx.send(e).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(rx)
    }

    /// Events the proxy produced that could not be queued for storage.
    pub fn egress_events_dropped(&self) -> u64 {
        self.inner.egress.dropped.load(Ordering::Relaxed)
    }

    /// `GET /v1/approvals`.
    pub fn approvals(&self, caller: &Caller) -> Result<Vec<Approval>> {
        caller.require(Role::Viewer, "reading approvals")?;
        let tenant = (!caller.is_admin()).then(|| caller.tenant_id());
        Ok(self.inner.egress.approvals.list(tenant))
    }

    /// `POST /v1/approvals/{id}`.
    pub async fn decide_approval(&self, caller: &Caller, id: &str, decision: ApprovalDecision) -> Result<Approval> {
        caller.require(Role::Member, "deciding approvals")?;
        let approvals = &self.inner.egress.approvals;
        let visible = approvals.get(id).filter(|a| caller.sees(&a.tenant));
        if visible.is_none() {
            return Err(CoreError::ApprovalNotFound(id.to_string()));
        }
        let who = caller.key_id.clone().map_or_else(|| caller.tenant.name.clone(), |k| format!("key {k}"));
        let decided = approvals.decide(id, decision, &who).map_err(|done| match done {
            Some(state) => CoreError::Conflict(format!("approval {id} was already decided: {state:?}")),
            None => CoreError::ApprovalNotFound(id.to_string()),
        })?;
        let details = serde_json::json!({
            "decision": decision,
            "sandbox_id": decided.sandbox_id,
            "name": decided.name,
            "address": decided.address,
            "port": decided.port,
        });
        let record = crate::admin::audit_record(Some(caller), "egress.approval", id, details);
        if let Err(e) = self.inner.store.insert_audit(record).await {
            tracing::error!(error = %e, "cannot record an approval decision in the audit log");
        }
        Ok(decided)
    }

    pub fn subscribe_approvals(&self) -> broadcast::Receiver<Approval> {
        self.inner.egress.approvals.subscribe()
    }
}
