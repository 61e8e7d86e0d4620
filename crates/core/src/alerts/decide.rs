//! What a signal does to an alert: pure decisions over the stored state, so
//! deduplication, cooldowns, acks and silences are tested without a store.

use superserver_store::{AlertEventRecord, AlertRecord, AlertView, AlertWrite, SilenceRecord};

/// The parts of a rule a decision needs.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    pub rule: String,
    pub rule_kind: String,
    pub severity: String,
    pub cooldown_ms: i64,
}

/// A notification to send: `firing` (the n-th, 1 for the first) or `resolved`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Notify {
    Firing(u32),
    Resolved,
}

/// What a decision did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decision {
    /// The alert after the change (`None` if nothing was open to resolve).
    pub alert: Option<AlertRecord>,
    pub opened: bool,
    pub notify: Option<Notify>,
}

/// The silence covering a rule and service, if any.
pub(crate) fn silenced_by<'a>(silences: &'a [SilenceRecord], rule: &str, service: &str) -> Option<&'a SilenceRecord> {
    silences
        .iter()
        .find(|s| s.rule.as_deref().is_none_or(|r| r == rule) && s.service_id.as_deref().is_none_or(|v| v == service))
}

fn event(alert_id: &str, at_ms: i64, kind: &str, detail: String) -> AlertEventRecord {
    AlertEventRecord { alert_id: alert_id.into(), at_ms, kind: kind.into(), detail }
}

/// A raised condition: what opens an alert if none is open.
#[derive(Clone, Copy)]
pub(crate) struct Raised<'a> {
    pub fingerprint: &'a str,
    pub service: &'a str,
    pub summary: &'a str,
    /// JSON of the alert's context.
    pub context: &'a str,
    pub new_id: &'a str,
    pub now: i64,
}

/// The condition holds. Opens an alert unless one is open (dedup), and
/// notifies unless silenced, acknowledged, or within the cooldown.
/// `build_rows` makes the notification's outbox rows for the alert.
pub(crate) fn on_raise(
    view: AlertView,
    p: &Policy,
    r: &Raised<'_>,
    build_rows: &dyn Fn(&AlertRecord, Notify) -> Vec<superserver_store::NewOutbox>,
) -> (AlertWrite, Decision) {
    let Raised { fingerprint, service, summary, context, new_id, now } = *r;
    let silence = silenced_by(&view.silences, &p.rule, service);
    let mut events = Vec::new();
    let (mut alert, opened) = match view.open {
        Some(a) => (a, false),
        None => {
            let a = AlertRecord {
                id: new_id.into(),
                fingerprint: fingerprint.into(),
                rule: p.rule.clone(),
                rule_kind: p.rule_kind.clone(),
                service_id: service.into(),
                severity: p.severity.clone(),
                state: "firing".into(),
                summary: summary.into(),
                started_at_ms: now,
                resolved_at_ms: None,
                acked_by: None,
                acked_at_ms: None,
                notifications: 0,
                last_notified_at_ms: None,
                context: context.into(),
            };
            events.push(event(new_id, now, "fired", summary.into()));
            (a, true)
        }
    };
    let last = if opened { view.last_notified_at_ms } else { alert.last_notified_at_ms };
    let cooling = last.is_some_and(|t| now - t < p.cooldown_ms);
    let notify = if alert.acked_by.is_some() {
        None
    } else if let Some(s) = silence {
        if opened {
            events.push(event(
                &alert.id,
                now,
                "suppressed",
                format!("silence {} until {}: {}", s.id, s.until_ms, s.reason),
            ));
        }
        None
    } else if cooling {
        if opened {
            events.push(event(&alert.id, now, "suppressed", format!("cooldown: notified at {}", last.unwrap_or(0))));
        }
        None
    } else {
        Some(Notify::Firing(alert.notifications + 1))
    };
    let mut outbox = Vec::new();
    if let Some(n) = notify {
        alert.notifications += 1;
        alert.last_notified_at_ms = Some(now);
        outbox = build_rows(&alert, n);
        let dest: Vec<&str> = outbox.iter().map(|r| r.destination.as_str()).collect();
        events.push(event(&alert.id, now, "notified", format!("firing #{}: {}", alert.notifications, dest.join(", "))));
    }
    let changed = opened || notify.is_some();
    let w = AlertWrite { upsert: changed.then(|| alert.clone()), events, outbox };
    (w, Decision { alert: Some(alert), opened, notify })
}

/// The condition ended: resolves the open alert, with a `resolved`
/// notification if it notified while firing and is not silenced now.
pub(crate) fn on_resolve(
    view: AlertView,
    now: i64,
    why: &str,
    build_rows: &dyn Fn(&AlertRecord, Notify) -> Vec<superserver_store::NewOutbox>,
) -> (AlertWrite, Decision) {
    let Some(mut alert) = view.open else {
        return (AlertWrite::default(), Decision { alert: None, opened: false, notify: None });
    };
    alert.state = "resolved".into();
    alert.resolved_at_ms = Some(now);
    let mut events = vec![event(&alert.id, now, "resolved", why.into())];
    let silenced = silenced_by(&view.silences, &alert.rule, &alert.service_id).is_some();
    let notify = (alert.notifications > 0 && !silenced).then_some(Notify::Resolved);
    let mut outbox = Vec::new();
    if notify.is_some() {
        alert.notifications += 1;
        outbox = build_rows(&alert, Notify::Resolved);
        let dest: Vec<&str> = outbox.iter().map(|r| r.destination.as_str()).collect();
        events.push(event(&alert.id, now, "notified", format!("resolved: {}", dest.join(", "))));
    }
    let w = AlertWrite { upsert: Some(alert.clone()), events, outbox };
    (w, Decision { alert: Some(alert), opened: false, notify })
}

#[cfg(test)]
mod tests {
    use super::*;
    use superserver_store::NewOutbox;

    fn policy() -> Policy {
        Policy {
            rule: "down".into(),
            rule_kind: "service_down".into(),
            severity: "critical".into(),
            cooldown_ms: 60_000,
        }
    }

    fn rows(a: &AlertRecord, n: Notify) -> Vec<NewOutbox> {
        vec![NewOutbox {
            event_id: format!("{}:{n:?}", a.id),
            destination: "webhook:x".into(),
            event_type: "alert".into(),
            tenant_id: None,
            payload: "{}".into(),
            created_at_ms: 0,
        }]
    }

    fn raise(view: AlertView, now: i64) -> (AlertWrite, Decision) {
        let r = Raised {
            fingerprint: "down/container:web",
            service: "container:web",
            summary: "down",
            context: "{}",
            new_id: "al_1",
            now,
        };
        on_raise(view, &policy(), &r, &rows)
    }

    fn silence(rule: Option<&str>, service: Option<&str>) -> SilenceRecord {
        SilenceRecord {
            id: "si_1".into(),
            rule: rule.map(Into::into),
            service_id: service.map(Into::into),
            until_ms: i64::MAX,
            reason: "maintenance".into(),
            created_by: "k".into(),
            created_at_ms: 0,
        }
    }

    #[test]
    fn first_signal_opens_and_notifies_once_then_dedups() {
        let (w, d) = raise(AlertView::default(), 1_000);
        assert!(d.opened);
        assert_eq!(d.notify, Some(Notify::Firing(1)));
        assert_eq!(w.outbox.len(), 1);
        let open = d.alert.unwrap();
        // The same condition again, inside the cooldown: nothing changes.
        let (w, d) = raise(AlertView { open: Some(open.clone()), ..Default::default() }, 2_000);
        assert!(!d.opened);
        assert_eq!(d.notify, None);
        assert_eq!(w, AlertWrite::default());
        // After the cooldown: a repeat notification of the same alert.
        let (w, d) = raise(AlertView { open: Some(open), ..Default::default() }, 61_000);
        assert_eq!(d.notify, Some(Notify::Firing(2)));
        assert_eq!(w.upsert.unwrap().id, "al_1");
    }

    #[test]
    fn acked_alerts_do_not_repeat_but_resolve_loudly() {
        let (_, d) = raise(AlertView::default(), 0);
        let mut open = d.alert.unwrap();
        open.acked_by = Some("key".into());
        let (w, d) = raise(AlertView { open: Some(open.clone()), ..Default::default() }, 1_000_000);
        assert_eq!(d.notify, None);
        assert!(w.outbox.is_empty());
        let (w, d) = on_resolve(AlertView { open: Some(open), ..Default::default() }, 1_000_001, "running", &rows);
        assert_eq!(d.notify, Some(Notify::Resolved));
        assert_eq!(w.upsert.unwrap().state, "resolved");
    }

    #[test]
    fn silences_suppress_by_rule_or_service() {
        for s in [silence(Some("down"), None), silence(None, Some("container:web")), silence(None, None)] {
            let (w, d) = raise(AlertView { silences: vec![s], ..Default::default() }, 0);
            assert!(d.opened);
            assert_eq!(d.notify, None);
            assert!(w.outbox.is_empty());
            assert!(w.events.iter().any(|e| e.kind == "suppressed"));
            // Never notified, so its resolution is quiet too.
            let (w, d) = on_resolve(AlertView { open: d.alert, ..Default::default() }, 5, "up", &rows);
            assert_eq!(d.notify, None);
            assert!(w.outbox.is_empty());
        }
        let other = silence(Some("other"), Some("container:web"));
        let (_, d) = raise(AlertView { silences: vec![other], ..Default::default() }, 0);
        assert_eq!(d.notify, Some(Notify::Firing(1)));
    }

    #[test]
    fn a_new_alert_within_the_cooldown_is_recorded_but_quiet() {
        let (_, d) = raise(AlertView { last_notified_at_ms: Some(0), ..Default::default() }, 30_000);
        assert!(d.opened);
        assert_eq!(d.notify, None);
        let (_, d) = raise(AlertView { last_notified_at_ms: Some(0), ..Default::default() }, 60_000);
        assert_eq!(d.notify, Some(Notify::Firing(1)));
    }

    #[test]
    fn resolving_nothing_changes_nothing() {
        let (w, d) = on_resolve(AlertView::default(), 0, "up", &rows);
        assert_eq!(w, AlertWrite::default());
        assert!(d.alert.is_none());
    }
}
