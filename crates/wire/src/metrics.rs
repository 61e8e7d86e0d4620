//! Metrics: time series of the host, its containers and processes, and
//! SuperServer's sandboxes. A series is named `<service>/<metric>`, e.g.
//! `host/cpu.percent`, `container:web/memory.bytes`, `sandbox:sb_x/cpu.percent`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A series and its latest value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MetricSeries {
    pub name: String,
    pub last_t_ms: i64,
    pub last_value: f64,
}

/// `GET /v1/metrics/series`: the series the caller may read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MetricSeriesList {
    pub series: Vec<MetricSeries>,
}

/// One point: a raw sample (avg = min = max) or a bucket starting at `t_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MetricPoint {
    pub t_ms: i64,
    pub avg: f64,
    pub min: f64,
    pub max: f64,
}

/// `GET /v1/metrics/query`: a series' points in a range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MetricQueryResult {
    pub series: String,
    pub from_ms: i64,
    pub to_ms: i64,
    /// Width of each point, ms (the sampling interval for raw points).
    pub step_ms: i64,
    /// The stored tier read: `raw`, `1m`, `10m` or `1h`.
    pub tier: String,
    pub points: Vec<MetricPoint>,
}
