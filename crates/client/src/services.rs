//! Discovery: the host's services, the service map, and their changes.

use reqwest::Method;
use superserver_wire::{
    AnomalyList, HealthList, ServiceDetail, ServiceEventList, ServiceHealth, ServiceList, ServiceMap,
};

use crate::client::Client;
use crate::error::Result;

impl Client {
    /// `GET /v1/services` (admin).
    pub async fn services(&self) -> Result<ServiceList> {
        self.call_json(self.request(Method::GET, &["v1", "services"]), "GET /v1/services").await
    }

    /// `GET /v1/services/map` (admin).
    pub async fn service_map(&self) -> Result<ServiceMap> {
        self.call_json(self.request(Method::GET, &["v1", "services", "map"]), "GET /v1/services/map").await
    }

    /// `GET /v1/services/{id}` (admin).
    pub async fn service(&self, id: &str) -> Result<ServiceDetail> {
        self.call_json(self.request(Method::GET, &["v1", "services", id]), "GET /v1/services/{id}").await
    }

    /// `GET /v1/services/events[?limit=…]` (admin): newest first.
    pub async fn service_events(&self, limit: Option<u32>) -> Result<ServiceEventList> {
        let mut rb = self.request(Method::GET, &["v1", "services", "events"]);
        if let Some(n) = limit {
            rb = rb.query(&[("limit", n.to_string())]);
        }
        self.call_json(rb, "GET /v1/services/events").await
    }

    /// `GET /v1/health` (admin): every service's health.
    pub async fn health(&self) -> Result<HealthList> {
        self.call_json(self.request(Method::GET, &["v1", "health"]), "GET /v1/health").await
    }

    /// `GET /v1/services/{id}/health` (admin).
    pub async fn service_health(&self, id: &str) -> Result<ServiceHealth> {
        self.call_json(self.request(Method::GET, &["v1", "services", id, "health"]), "GET /v1/services/{id}/health")
            .await
    }

    /// `GET /v1/anomalies` (admin): newest first, optionally of one service or kind.
    pub async fn anomalies(
        &self,
        service: Option<&str>,
        kind: Option<&str>,
        limit: Option<u32>,
    ) -> Result<AnomalyList> {
        let mut rb = self.request(Method::GET, &["v1", "anomalies"]);
        if let Some(s) = service {
            rb = rb.query(&[("service", s)]);
        }
        if let Some(k) = kind {
            rb = rb.query(&[("kind", k)]);
        }
        if let Some(n) = limit {
            rb = rb.query(&[("limit", n.to_string())]);
        }
        self.call_json(rb, "GET /v1/anomalies").await
    }
}
