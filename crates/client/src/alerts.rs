//! Alerts and silences.

use reqwest::Method;
use superserver_wire::{Alert, AlertDetail, AlertList, Silence, SilenceList, SilenceRequest};

use crate::client::Client;
use crate::error::Result;

impl Client {
    /// `GET /v1/alerts[?state=…&service=…]` (admin): newest first.
    pub async fn alerts(&self, state: Option<&str>, service: Option<&str>) -> Result<AlertList> {
        let mut rb = self.request(Method::GET, &["v1", "alerts"]);
        if let Some(s) = state {
            rb = rb.query(&[("state", s)]);
        }
        if let Some(s) = service {
            rb = rb.query(&[("service", s)]);
        }
        self.call_json(rb, "GET /v1/alerts").await
    }

    /// `GET /v1/alerts/{id}` (admin).
    pub async fn alert(&self, id: &str) -> Result<AlertDetail> {
        self.call_json(self.request(Method::GET, &["v1", "alerts", id]), "GET /v1/alerts/{id}").await
    }

    /// `POST /v1/alerts/{id}/ack` (admin).
    pub async fn ack_alert(&self, id: &str) -> Result<Alert> {
        self.call_json(self.request(Method::POST, &["v1", "alerts", id, "ack"]), "POST /v1/alerts/{id}/ack").await
    }

    /// `POST /v1/alerts/{id}/silence` (admin).
    pub async fn silence_alert(&self, id: &str, req: &SilenceRequest) -> Result<Silence> {
        let rb = self.request(Method::POST, &["v1", "alerts", id, "silence"]).json(req);
        self.call_json(rb, "POST /v1/alerts/{id}/silence").await
    }

    /// `GET /v1/silences` (admin).
    pub async fn silences(&self) -> Result<SilenceList> {
        self.call_json(self.request(Method::GET, &["v1", "silences"]), "GET /v1/silences").await
    }

    /// `POST /v1/silences` (admin).
    pub async fn create_silence(&self, req: &SilenceRequest) -> Result<Silence> {
        self.call_json(self.request(Method::POST, &["v1", "silences"]).json(req), "POST /v1/silences").await
    }

    /// `DELETE /v1/silences/{id}` (admin).
    pub async fn delete_silence(&self, id: &str) -> Result<()> {
        self.call_text(self.request(Method::DELETE, &["v1", "silences", id]), "application/json").await?;
        Ok(())
    }
}
