//! The notifications of an alert: one outbox row per channel (per
//! recipient for e-mail), each with a stable event id — the receivers'
//! idempotency key — so a notification is queued and seen once.

use serde_json::json;
use superserver_store::{AlertRecord, NewOutbox};
use superserver_wire::{Alert, AlertContext};

use super::config::ChannelKind;
use super::decide::Notify;
use super::{ALERT_FIRING, ALERT_RESOLVED};
use crate::config::Config;
use crate::tenancy::plans::rfc3339;

/// Most log lines quoted in a chat message or an e-mail.
const MAX_QUOTED_LINES: usize = 20;
/// Most bytes of one quoted string (summary, line) in a chat message.
const MAX_QUOTED: usize = 300;

/// Destination prefixes of alert channels in the outbox.
pub(crate) const DEST_WEBHOOK: &str = "alert-webhook";
pub(crate) const DEST_SLACK: &str = "slack";

fn parse<T: serde::de::DeserializeOwned>(s: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
}

/// The stored alert as the API shows it.
pub(crate) fn to_wire(a: &AlertRecord) -> Alert {
    Alert {
        id: a.id.clone(),
        fingerprint: a.fingerprint.clone(),
        rule: a.rule.clone(),
        rule_kind: parse(&a.rule_kind).unwrap_or(superserver_wire::RuleKind::Anomaly),
        service: a.service_id.clone(),
        severity: parse(&a.severity).unwrap_or(superserver_wire::Severity::Warning),
        state: parse(&a.state).unwrap_or(superserver_wire::AlertState::Firing),
        summary: a.summary.clone(),
        started_at_ms: a.started_at_ms,
        resolved_at_ms: a.resolved_at_ms,
        ack: match (&a.acked_by, a.acked_at_ms) {
            (Some(by), Some(at_ms)) => Some(superserver_wire::Ack { by: by.clone(), at_ms }),
            _ => None,
        },
        notifications: a.notifications,
        last_notified_at_ms: a.last_notified_at_ms,
        context: serde_json::from_str(&a.context).unwrap_or_default(),
    }
}

/// One row per channel of the rule (`None`: every channel).
pub(crate) fn rows(cfg: &Config, channels: Option<&[String]>, a: &AlertRecord, n: Notify, now: i64) -> Vec<NewOutbox> {
    let (event_type, event_id) = match n {
        Notify::Firing(k) => (ALERT_FIRING, format!("{ALERT_FIRING}:{}:{k}", a.id)),
        Notify::Resolved => (ALERT_RESOLVED, format!("{ALERT_RESOLVED}:{}", a.id)),
    };
    let alert = to_wire(a);
    let row = |destination: String, payload: String| NewOutbox {
        event_id: event_id.clone(),
        destination,
        event_type: event_type.into(),
        tenant_id: None,
        payload,
        created_at_ms: now,
    };
    let mut out = Vec::new();
    for ch in cfg.alerts.channels.iter().filter(|c| channels.is_none_or(|names| names.contains(&c.name))) {
        match ch.kind {
            ChannelKind::Webhook => {
                let body =
                    json!({"id": event_id, "type": event_type, "created_at": rfc3339(now), "data": {"alert": alert}});
                out.push(row(format!("{DEST_WEBHOOK}:{}", ch.name), body.to_string()));
            }
            ChannelKind::Slack => out.push(row(format!("{DEST_SLACK}:{}", ch.name), slack(&alert, n).to_string())),
            ChannelKind::Email => {
                let (subject, text) = email(&alert, n);
                for to in &ch.to {
                    let body = json!({"to": to, "subject": subject, "text": text});
                    out.push(row(format!("email:{to}"), body.to_string()));
                }
            }
        }
    }
    out
}

fn headline(a: &Alert, n: Notify) -> String {
    let what = match n {
        Notify::Firing(1) => "FIRING".to_string(),
        Notify::Firing(k) => format!("STILL FIRING (#{k})"),
        Notify::Resolved => "RESOLVED".to_string(),
    };
    format!("[{what}] {:?} {} on {}", a.severity, a.rule, a.service).replace(['"'], "")
}

/// Cuts a string to `max` bytes at a character boundary.
fn bound(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &s[..cut])
}

/// Slack mrkdwn escaping: `&`, `<`, `>` (so no link or mention can be injected).
fn esc(s: &str) -> String {
    bound(s, MAX_QUOTED).replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Text inside a ``` block: escaped, and no ``` to close it early.
fn code(s: &str) -> String {
    esc(s).replace("```", "'''")
}

fn slack(a: &Alert, n: Notify) -> serde_json::Value {
    let head = esc(&headline(a, n));
    let text = format!("{head}: {}", esc(&a.summary));
    let mut blocks =
        vec![json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("*{head}*\n{}", esc(&a.summary))}})];
    let ctx = &a.context;
    if !ctx.changes.is_empty() {
        let lines: Vec<String> = ctx
            .changes
            .iter()
            .take(5)
            .map(|c| {
                format!(
                    "• {} {}: {} → {}",
                    rfc3339(c.at_ms),
                    esc(&c.kind),
                    code(c.before.as_deref().unwrap_or("-")),
                    code(c.after.as_deref().unwrap_or("-"))
                )
            })
            .collect();
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("*Recent changes*\n{}", lines.join("\n"))}}));
    }
    if !ctx.log_excerpt.is_empty() && !matches!(n, Notify::Resolved) {
        let tail = &ctx.log_excerpt[ctx.log_excerpt.len().saturating_sub(10)..];
        let lines: Vec<String> = tail.iter().map(|l| code(l)).collect();
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("*Last log lines*\n```{}```", lines.join("\n"))}}));
    }
    blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": format!("alert {} · since {}", esc(&a.id), rfc3339(a.started_at_ms))}]}));
    json!({"text": text, "blocks": blocks})
}

fn email(a: &Alert, n: Notify) -> (String, String) {
    let subject: String = format!("SuperServer: {}", headline(a, n)).chars().filter(|c| !c.is_control()).collect();
    let mut text = format!(
        "{}\n\nService: {}\nRule: {} ({:?})\nSince: {}\n",
        a.summary,
        a.service,
        a.rule,
        a.rule_kind,
        rfc3339(a.started_at_ms)
    );
    if let Some(at) = a.resolved_at_ms {
        text.push_str(&format!("Resolved: {}\n", rfc3339(at)));
    }
    text.push_str(&context_text(&a.context));
    text.push_str(&format!("\nAlert id: {}\n", a.id));
    (bound(&subject, 200), text)
}

fn context_text(ctx: &AlertContext) -> String {
    let mut t = String::new();
    if !ctx.changes.is_empty() {
        t.push_str("\nRecent changes:\n");
        for c in ctx.changes.iter().take(10) {
            t.push_str(&format!(
                "  {} {}: {} -> {}\n",
                rfc3339(c.at_ms),
                c.kind,
                c.before.as_deref().unwrap_or("-"),
                c.after.as_deref().unwrap_or("-")
            ));
        }
    }
    if !ctx.log_excerpt.is_empty() {
        t.push_str("\nLast log lines:\n");
        for l in ctx.log_excerpt.iter().rev().take(MAX_QUOTED_LINES).rev() {
            t.push_str(&format!("  {l}\n"));
        }
    }
    for n in &ctx.notes {
        t.push_str(&format!("\nNote: {n}\n"));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_text_cannot_inject_links_or_close_code_blocks() {
        assert_eq!(esc("<!channel> & <http://x|y>"), "&lt;!channel&gt; &amp; &lt;http://x|y&gt;");
        assert_eq!(code("a```b"), "a'''b");
        assert!(bound(&"é".repeat(400), MAX_QUOTED).len() <= MAX_QUOTED + 3);
    }
}
