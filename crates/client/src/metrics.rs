//! Metrics: stored time series and their points.

use reqwest::Method;
use superserver_wire::{MetricQueryResult, MetricSeriesList};

use crate::client::Client;
use crate::error::Result;

impl Client {
    /// `GET /v1/metrics/series`: the series the key may read.
    pub async fn metric_series(&self) -> Result<MetricSeriesList> {
        self.call_json(self.request(Method::GET, &["v1", "metrics", "series"]), "GET /v1/metrics/series").await
    }

    /// `GET /v1/metrics/query`: `series` in `[from_ms, to_ms)` (defaults: the
    /// last hour), `step` like `1m` (default: picked by the server).
    pub async fn metric_query(
        &self,
        series: &str,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
        step: Option<&str>,
    ) -> Result<MetricQueryResult> {
        let mut q = vec![("series", series.to_string())];
        q.extend(from_ms.map(|v| ("from", v.to_string())));
        q.extend(to_ms.map(|v| ("to", v.to_string())));
        q.extend(step.map(|v| ("step", v.to_string())));
        let rb = self.request(Method::GET, &["v1", "metrics", "query"]).query(&q);
        self.call_json(rb, "GET /v1/metrics/query").await
    }
}
