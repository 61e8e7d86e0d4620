//! Billing hooks: quota warnings and usage reports are written to the
//! store's outbox (idempotently: an event has a deterministic id, and an
//! event queued twice for one destination is kept once), and a background
//! worker delivers them — signed webhooks, e-mails — with retries and
//! backoff, surviving crashes and restarts.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use superserver_notify::{Delivery, DeliveryError, Email, WebhookEndpoint};
use superserver_store::{Attempt, NewOutbox, OutboxRow};
use superserver_wire::{OutboxEntry, OutboxList};

use crate::service::{now_ms, Service};
use crate::tenancy::{plans, Crossing, TenantEntry};

/// Event types.
pub const QUOTA_WARNING: &str = "quota.warning";
pub const USAGE_REPORTED: &str = "usage.reported";

impl Service {
    /// Starts the outbox worker and the usage reporter, and queues quota
    /// warnings that a crash may have kept from being queued.
    pub(crate) fn start_notifications(&self) {
        let svc = self.clone();
        tokio::spawn(async move {
            svc.reconcile_warnings().await;
            svc.outbox_worker().await;
        });
        let svc = self.clone();
        tokio::spawn(async move { svc.usage_reporter().await });
    }

    async fn reconcile_warnings(&self) {
        let now = now_ms();
        for t in self.inner.auth.tenants() {
            let Some(limits) = &t.limits else { continue };
            let due = self.inner.quotas.pending_warnings(&t.id, limits, now);
            if !due.is_empty() {
                self.warn_quota(&t, due).await;
            }
        }
    }

    /// Queues the warnings for quotas a tenant crossed.
    pub(crate) async fn warn_quota(&self, tenant: &TenantEntry, crossings: Vec<Crossing>) {
        let now = now_ms();
        let mut rows = Vec::new();
        for c in crossings {
            let event_id = format!("{QUOTA_WARNING}:{}:{}:{}:{}", tenant.id, c.quota, c.period_start_ms, c.percent);
            let payload = json!({
                "id": event_id,
                "type": QUOTA_WARNING,
                "created_at": plans::rfc3339(now),
                "tenant": {"id": tenant.id, "name": tenant.name, "plan": tenant.plan},
                "data": {
                    "quota": c.quota,
                    "percent": c.percent,
                    "used": c.used,
                    "limit": c.limit,
                    "period_start": plans::rfc3339(c.period_start_ms),
                    "resets_at": plans::rfc3339(c.resets_at_ms),
                },
            });
            rows.extend(webhook_rows(
                &self.inner.cfg.webhooks,
                &event_id,
                QUOTA_WARNING,
                Some(&tenant.id),
                &payload,
                now,
            ));
            if let (Some(_), Some(to)) = (&self.inner.cfg.smtp, &tenant.email) {
                let what = if c.percent >= 100 { "used up".to_string() } else { format!("{}% used", c.percent) };
                let email = json!({
                    "to": to,
                    "subject": format!("SuperServer: {} quota {what} for {}", c.quota, tenant.name),
                    "text": format!(
                        "Tenant {} (plan {}) has used {} of its {} {} quota this month ({}%).\n\
                         The quota resets at {}.\n{}",
                        tenant.name,
                        tenant.plan,
                        c.used,
                        c.limit,
                        c.quota,
                        c.percent,
                        plans::rfc3339(c.resets_at_ms),
                        if c.percent >= 100 {
                            "Requests that need more are refused with 429 quota_exceeded until then; an admin can \
                             move the tenant to a larger plan."
                        } else {
                            "Nothing is refused yet."
                        },
                    ),
                });
                rows.push(NewOutbox {
                    event_id: event_id.clone(),
                    destination: format!("email:{to}"),
                    event_type: QUOTA_WARNING.into(),
                    tenant_id: Some(tenant.id.clone()),
                    payload: email.to_string(),
                    created_at_ms: now,
                });
            }
        }
        self.enqueue(rows).await;
    }

    async fn enqueue(&self, rows: Vec<NewOutbox>) {
        if rows.is_empty() {
            return;
        }
        match self.inner.store.enqueue(rows).await {
            Ok(n) if n > 0 => self.inner.outbox_wake.notify_one(),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "cannot queue notifications"),
        }
    }

    /// Reports new usage every `billing.usage_report_interval_seconds`: one
    /// `usage.reported` event per tenant, queued together with the mark of
    /// what was reported, so every execution is reported exactly once.
    async fn usage_reporter(self) {
        let every = Duration::from_secs(self.inner.cfg.billing.usage_report_interval_seconds);
        loop {
            tokio::select! {
                _ = self.inner.cancel.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            if let Err(e) = self.report_usage().await {
                tracing::warn!(error = %e, "usage report failed; retrying at the next interval");
            }
        }
    }

    /// Queues one usage report of what was not reported yet.
    pub async fn report_usage(&self) -> crate::Result<usize> {
        let webhooks = self.inner.cfg.webhooks.clone();
        let names: HashMap<String, String> =
            self.inner.auth.tenants().iter().map(|t| (t.id.clone(), t.name.clone())).collect();
        let n = self
            .inner
            .store
            .report_usage(move |tenants| {
                let now = now_ms();
                let mut rows = Vec::new();
                for t in tenants {
                    // Queued once, in the transaction that marks the executions
                    // reported: a fresh id is unique, and retries keep it.
                    let event_id = format!("{USAGE_REPORTED}:{}:{}", t.tenant_id, crate::ids::new_id("r"));
                    let meters = [
                        ("executions", json!(t.executions), "count"),
                        ("cpu_seconds", json!(t.cpu_ms / 1000.0), "second"),
                        ("gb_seconds", json!(t.gb_seconds), "gigabyte_second"),
                        ("wall_seconds", json!(t.wall_ms / 1000.0), "second"),
                        ("output_bytes", json!(t.output_bytes), "byte"),
                    ];
                    let payload = json!({
                        "id": event_id,
                        "type": USAGE_REPORTED,
                        "created_at": plans::rfc3339(now),
                        "tenant": {"id": t.tenant_id, "name": names.get(&t.tenant_id).cloned().unwrap_or_default()},
                        "data": {
                            "first_started_at": plans::rfc3339(t.first_started_at_ms),
                            "last_started_at": plans::rfc3339(t.last_started_at_ms),
                            "meters": meters.iter()
                                .map(|(m, q, u)| json!({"meter": m, "quantity": q, "unit": u}))
                                .collect::<Vec<_>>(),
                        },
                    });
                    rows.extend(webhook_rows(&webhooks, &event_id, USAGE_REPORTED, Some(&t.tenant_id), &payload, now));
                }
                rows
            })
            .await?;
        if n > 0 {
            self.inner.outbox_wake.notify_one();
        }
        Ok(n)
    }

    /// Delivers due notifications until the server stops.
    async fn outbox_worker(self) {
        // Built on the first webhook delivery: a server without webhooks
        // never loads the TLS roots.
        let mut client: Option<reqwest::Client> = None;
        let secrets: Arc<HashMap<String, Vec<u8>>> = Arc::new(
            self.inner
                .cfg
                .webhooks
                .iter()
                .filter_map(|w| w.resolve_secret().ok().map(|s| (w.name.clone(), s)))
                .collect(),
        );
        loop {
            let due = match self.inner.store.outbox_due(now_ms(), 32).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the outbox");
                    Vec::new()
                }
            };
            let busy = !due.is_empty();
            if client.is_none()
                && due
                    .iter()
                    .any(|r| r.destination.starts_with("webhook:") || Self::is_alert_destination(&r.destination))
            {
                client = Some(superserver_notify::http_client());
            }
            let http = client.clone();
            // Different destinations in parallel; one destination in order.
            let mut by_dest: HashMap<String, Vec<OutboxRow>> = HashMap::new();
            for row in due {
                by_dest.entry(row.destination.clone()).or_default().push(row);
            }
            let mut tasks = tokio::task::JoinSet::new();
            for (_, rows) in by_dest {
                let (svc, client, secrets) = (self.clone(), http.clone(), secrets.clone());
                tasks.spawn(async move {
                    for row in rows {
                        svc.deliver(client.as_ref(), &secrets, row).await;
                    }
                });
            }
            while tasks.join_next().await.is_some() {}
            if busy {
                continue;
            }
            let wait = match self.inner.store.outbox_next_due().await {
                Ok(Some(at)) => Duration::from_millis((at - now_ms()).clamp(10, 1_000) as u64),
                _ => Duration::from_secs(1),
            };
            tokio::select! {
                _ = self.inner.cancel.cancelled() => return,
                _ = self.inner.outbox_wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn deliver(&self, client: Option<&reqwest::Client>, secrets: &HashMap<String, Vec<u8>>, row: OutboxRow) {
        let attempt = row.attempts + 1;
        let result = match row.destination.split_once(':') {
            Some(("webhook", name)) => {
                match (self.inner.cfg.webhooks.iter().find(|w| w.name == name), secrets.get(name), client) {
                    (Some(ep), Some(secret), Some(client)) => {
                        let d = Delivery {
                            event_id: row.event_id.clone(),
                            event_type: row.event_type.clone(),
                            created_at_ms: row.created_at_ms,
                            body: row.payload.clone().into_bytes(),
                            attempt,
                        };
                        superserver_notify::deliver_webhook(client, ep, secret, &d).await
                    }
                    _ => Err(DeliveryError::permanent(format!("webhook `{name}` is no longer configured"))),
                }
            }
            Some(("email", _)) => match &self.inner.cfg.smtp {
                Some(smtp) => match serde_json::from_str::<EmailPayload>(&row.payload) {
                    Ok(p) => {
                        let email =
                            Email { to: p.to, subject: p.subject, text: p.text, message_id_seed: row.event_id.clone() };
                        superserver_notify::send_email(smtp, &email).await
                    }
                    Err(e) => Err(DeliveryError::permanent(format!("unreadable e-mail in the outbox: {e}"))),
                },
                None => Err(DeliveryError::permanent("no [smtp] server is configured any more")),
            },
            _ if Self::is_alert_destination(&row.destination) => self.deliver_alert(client, &row, attempt).await,
            _ => Err(DeliveryError::permanent(format!("unknown destination {}", row.destination))),
        };
        let now = now_ms();
        let outcome = match result {
            Ok(()) => Attempt::Delivered,
            Err(e) if e.retryable && attempt < self.inner.cfg.billing.max_delivery_attempts => {
                let at_ms = now + superserver_notify::backoff(attempt).as_millis() as i64;
                tracing::info!(destination = %row.destination, event = %row.event_id, attempt, error = %e, "delivery failed; will retry");
                Attempt::Retry { at_ms, error: e.message }
            }
            Err(e) => {
                tracing::warn!(destination = %row.destination, event = %row.event_id, attempt, error = %e, "delivery given up");
                Attempt::GaveUp { error: e.message }
            }
        };
        if let Err(e) = self.inner.store.outbox_attempted(row.id, now, outcome).await {
            tracing::error!(error = %e, "cannot record a delivery attempt");
        }
    }

    /// `GET /v1/outbox` (admin): notifications, newest first, with their
    /// delivery state.
    pub async fn outbox(&self, caller: &crate::tenancy::Caller, limit: usize) -> crate::Result<OutboxList> {
        caller.require(superserver_wire::Role::Admin, "reading the outbox")?;
        let rows = self.inner.store.outbox_list(limit.clamp(1, 1000)).await?;
        Ok(OutboxList {
            entries: rows
                .into_iter()
                .map(|r| {
                    let state = if r.delivered_at_ms.is_some() {
                        "delivered"
                    } else if r.failed_at_ms.is_some() {
                        "failed"
                    } else {
                        "pending"
                    };
                    OutboxEntry {
                        next_attempt_at_ms: (state == "pending").then_some(r.next_attempt_at_ms),
                        event_id: r.event_id,
                        event_type: r.event_type,
                        destination: r.destination,
                        tenant_id: r.tenant_id,
                        created_at_ms: r.created_at_ms,
                        attempts: r.attempts,
                        state: state.into(),
                        delivered_at_ms: r.delivered_at_ms,
                        last_error: r.last_error,
                    }
                })
                .collect(),
        })
    }
}

/// One outbox row per configured webhook that wants `event_type`.
fn webhook_rows(
    webhooks: &[WebhookEndpoint],
    event_id: &str,
    event_type: &str,
    tenant_id: Option<&str>,
    payload: &serde_json::Value,
    now: i64,
) -> Vec<NewOutbox> {
    webhooks
        .iter()
        .filter(|w| w.wants(event_type))
        .map(|w| NewOutbox {
            event_id: event_id.to_string(),
            destination: format!("webhook:{}", w.name),
            event_type: event_type.to_string(),
            tenant_id: tenant_id.map(str::to_string),
            payload: payload.to_string(),
            created_at_ms: now,
        })
        .collect()
}

#[derive(serde::Deserialize)]
struct EmailPayload {
    to: String,
    subject: String,
    text: String,
}
