//! Delivering an alert channel's outbox row: a signed webhook (as
//! `[[webhooks]]`) or a Slack-compatible incoming webhook.

use std::time::Duration;

use reqwest::StatusCode;
use superserver_notify::{Delivery, DeliveryError, IDEMPOTENCY_HEADER};
use superserver_store::OutboxRow;

use super::config::ChannelKind;
use super::payload::{DEST_SLACK, DEST_WEBHOOK};
use crate::service::Service;

impl Service {
    /// Whether an outbox destination is an alert channel's.
    pub(crate) fn is_alert_destination(destination: &str) -> bool {
        destination.split_once(':').is_some_and(|(k, _)| k == DEST_WEBHOOK || k == DEST_SLACK)
    }

    /// Sends one alert notification to its channel.
    pub(crate) async fn deliver_alert(
        &self,
        client: Option<&reqwest::Client>,
        row: &OutboxRow,
        attempt: u32,
    ) -> Result<(), DeliveryError> {
        let Some((kind, name)) = row.destination.split_once(':') else {
            return Err(DeliveryError::permanent(format!("unknown destination {}", row.destination)));
        };
        let Some(ch) = self.inner.cfg.alerts.channels.iter().find(|c| c.name == name) else {
            return Err(DeliveryError::permanent(format!("alert channel `{name}` is no longer configured")));
        };
        let Some(client) = client else { return Err(DeliveryError::transient("no HTTP client yet")) };
        match (kind, ch.kind) {
            (DEST_WEBHOOK, ChannelKind::Webhook) => {
                let ep = ch.endpoint();
                let secret = ep.resolve_secret().map_err(DeliveryError::permanent)?;
                let d = Delivery {
                    event_id: row.event_id.clone(),
                    event_type: row.event_type.clone(),
                    created_at_ms: row.created_at_ms,
                    body: row.payload.clone().into_bytes(),
                    attempt,
                };
                superserver_notify::deliver_webhook(client, &ep, &secret, &d).await
            }
            (DEST_SLACK, ChannelKind::Slack) => {
                let what = format!("slack channel {name:?}");
                let url = ch.url.as_deref().unwrap_or_default();
                let resp = client
                    .post(url)
                    .timeout(Duration::from_millis(ch.timeout_ms))
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .header(IDEMPOTENCY_HEADER, &row.event_id)
                    .body(row.payload.clone())
                    .send()
                    .await
                    .map_err(|e| DeliveryError::transient(format!("{what}: {}", e.without_url())))?;
                let status = resp.status();
                if status.is_success() {
                    return Ok(());
                }
                let msg = format!("{what}: HTTP {status}");
                if status.is_server_error()
                    || matches!(status, StatusCode::TOO_MANY_REQUESTS | StatusCode::REQUEST_TIMEOUT)
                {
                    Err(DeliveryError::transient(msg))
                } else {
                    Err(DeliveryError::permanent(msg))
                }
            }
            _ => Err(DeliveryError::permanent(format!("alert channel `{name}` changed kind"))),
        }
    }
}
