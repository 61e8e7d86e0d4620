//! The alert operations behind `/v1/alerts` and `/v1/silences` (admin:
//! alerts are about the host's services).

use superserver_store::{AlertEventRecord, AlertWrite, SilenceRecord};
use superserver_wire::{Alert, AlertDetail, AlertEvent, AlertList, Role, Silence, SilenceList, SilenceRequest};

use super::payload::to_wire;
use crate::error::{CoreError, Result};
use crate::service::{now_ms, Service};
use crate::tenancy::Caller;

const WHAT: &str = "reading or changing alerts about the host's services";
/// Longest silence.
const MAX_SILENCE_MS: i64 = 366 * 24 * 3600 * 1000;
const MAX_REASON: usize = 1000;

fn who(caller: &Caller) -> String {
    caller.key_id.clone().unwrap_or_else(|| "admin".into())
}

fn silence_wire(s: SilenceRecord) -> Silence {
    Silence {
        id: s.id,
        rule: s.rule,
        service: s.service_id,
        until_ms: s.until_ms,
        reason: s.reason,
        by: s.created_by,
        created_at_ms: s.created_at_ms,
    }
}

impl Service {
    /// `GET /v1/alerts`: newest first; `state` is `firing`, `resolved` or `all` (default `firing`).
    pub async fn alerts(
        &self,
        caller: &Caller,
        state: Option<&str>,
        service: Option<String>,
        limit: usize,
    ) -> Result<AlertList> {
        caller.require(Role::Admin, WHAT)?;
        let state = match state.unwrap_or("firing") {
            "all" => None,
            s @ ("firing" | "resolved") => Some(s.to_string()),
            other => {
                return Err(CoreError::InvalidRequest(format!("state {other:?} is not one of firing, resolved, all")))
            }
        };
        let rows = self.inner.store.list_alerts(state, service, limit.clamp(1, 1000)).await?;
        Ok(AlertList { alerts: rows.iter().map(to_wire).collect() })
    }

    /// `GET /v1/alerts/{id}`: the alert and its history.
    pub async fn alert(&self, caller: &Caller, id: &str) -> Result<AlertDetail> {
        caller.require(Role::Admin, WHAT)?;
        let a = self.inner.store.get_alert(id.into()).await?.ok_or_else(|| CoreError::AlertNotFound(id.into()))?;
        let history = self.inner.store.alert_events(id.into()).await?;
        Ok(AlertDetail {
            alert: to_wire(&a),
            history: history
                .into_iter()
                .map(|e| AlertEvent { at_ms: e.at_ms, kind: e.kind, detail: e.detail })
                .collect(),
        })
    }

    /// `POST /v1/alerts/{id}/ack`: no more repeat notifications of the alert
    /// (its resolution is still notified). Acking twice keeps the first ack.
    pub async fn ack_alert(&self, caller: &Caller, id: &str) -> Result<Alert> {
        caller.require(Role::Admin, WHAT)?;
        let (by, now) = (who(caller), now_ms());
        let (a, _) = self
            .inner
            .store
            .alert_update(id.into(), now, move |a, _| match a {
                Some(mut a) if a.acked_by.is_none() => {
                    a.acked_by = Some(by.clone());
                    a.acked_at_ms = Some(now);
                    let e = AlertEventRecord {
                        alert_id: a.id.clone(),
                        at_ms: now,
                        kind: "acked".into(),
                        detail: by.clone(),
                    };
                    (AlertWrite { upsert: Some(a.clone()), events: vec![e], outbox: Vec::new() }, Some(a))
                }
                other => (AlertWrite::default(), other),
            })
            .await?;
        a.map(|a| to_wire(&a)).ok_or_else(|| CoreError::AlertNotFound(id.into()))
    }

    /// `POST /v1/alerts/{id}/silence`: silences the alert's rule on its service.
    pub async fn silence_alert(&self, caller: &Caller, id: &str, req: SilenceRequest) -> Result<Silence> {
        caller.require(Role::Admin, WHAT)?;
        if req.rule.is_some() || req.service.is_some() {
            return Err(CoreError::InvalidRequest(
                "rule and service come from the alert; use POST /v1/silences for another scope".into(),
            ));
        }
        let a = self.inner.store.get_alert(id.into()).await?.ok_or_else(|| CoreError::AlertNotFound(id.into()))?;
        let s = self
            .create_silence(caller, SilenceRequest { rule: Some(a.rule), service: Some(a.service_id), ..req })
            .await?;
        let (sid, reason, now) = (s.id.clone(), s.reason.clone(), now_ms());
        self.inner
            .store
            .alert_update(id.into(), now, move |a, _| {
                let events = a
                    .map(|a| AlertEventRecord {
                        alert_id: a.id,
                        at_ms: now,
                        kind: "silenced".into(),
                        detail: format!("silence {sid}: {reason}"),
                    })
                    .into_iter()
                    .collect();
                (AlertWrite { upsert: None, events, outbox: Vec::new() }, ())
            })
            .await?;
        Ok(s)
    }

    /// `POST /v1/silences`: exactly one of `for_seconds` and `until`.
    pub async fn create_silence(&self, caller: &Caller, req: SilenceRequest) -> Result<Silence> {
        caller.require(Role::Admin, WHAT)?;
        let now = now_ms();
        let until_ms = match (req.for_seconds, req.until) {
            (Some(s), None) if s > 0 => now.saturating_add(i64::try_from(s).unwrap_or(i64::MAX).saturating_mul(1000)),
            (None, Some(u)) => u,
            (Some(_), None) => return Err(CoreError::InvalidRequest("for_seconds must be at least 1".into())),
            _ => {
                return Err(CoreError::InvalidRequest(
                    "give exactly one of for_seconds and until (Unix milliseconds)".into(),
                ))
            }
        };
        if until_ms <= now {
            return Err(CoreError::InvalidRequest(
                "the silence would end in the past: until must be later than now".into(),
            ));
        }
        if until_ms - now > MAX_SILENCE_MS {
            return Err(CoreError::InvalidRequest("a silence lasts at most 366 days".into()));
        }
        if req.reason.len() > MAX_REASON || req.reason.chars().any(|c| c.is_control() && c != '\n') {
            return Err(CoreError::InvalidRequest(format!(
                "reason must be at most {MAX_REASON} bytes without control characters"
            )));
        }
        for (field, v) in [("rule", &req.rule), ("service", &req.service)] {
            if v.as_ref().is_some_and(|v| v.is_empty() || v.len() > 512 || v.chars().any(char::is_control)) {
                return Err(CoreError::InvalidRequest(format!(
                    "{field} must be 1 to 512 bytes without control characters"
                )));
            }
        }
        let s = SilenceRecord {
            id: crate::ids::new_id("si"),
            rule: req.rule,
            service_id: req.service,
            until_ms,
            reason: req.reason,
            created_by: who(caller),
            created_at_ms: now,
        };
        self.inner.store.insert_silence(s.clone()).await?;
        tracing::info!(silence = %s.id, rule = ?s.rule, service = ?s.service_id, until_ms, "silence created");
        Ok(silence_wire(s))
    }

    /// `GET /v1/silences`: the active ones.
    pub async fn silences(&self, caller: &Caller) -> Result<SilenceList> {
        caller.require(Role::Admin, WHAT)?;
        let rows = self.inner.store.list_silences(now_ms()).await?;
        Ok(SilenceList { silences: rows.into_iter().map(silence_wire).collect() })
    }

    /// `DELETE /v1/silences/{id}`: ends a silence now.
    pub async fn delete_silence(&self, caller: &Caller, id: &str) -> Result<()> {
        caller.require(Role::Admin, WHAT)?;
        if self.inner.store.end_silence(id.into(), now_ms()).await? {
            Ok(())
        } else {
            Err(CoreError::SilenceNotFound(id.into()))
        }
    }
}
