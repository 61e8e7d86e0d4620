//! Wire types of anomalies (`/v1/anomalies`): what departed from a service's
//! baseline, with the evidence that shows it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What kind of departure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyKind {
    /// An error line of a template never seen before.
    NewErrorTemplate,
    /// One template's rate far above its baseline.
    TemplateRateSpike,
    /// The service's error lines far above their baseline.
    ErrorRateSpike,
    /// The service restarts in a loop.
    CrashLoop,
    /// A filesystem fills up within the configured horizon at the current pace.
    DiskFullSoon,
    /// Memory grows steadily (a leak, most likely).
    MemoryGrowth,
    /// Health changes too often.
    HealthFlapping,
}

impl AnomalyKind {
    /// The snake_case name used on the wire and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NewErrorTemplate => "new_error_template",
            Self::TemplateRateSpike => "template_rate_spike",
            Self::ErrorRateSpike => "error_rate_spike",
            Self::CrashLoop => "crash_loop",
            Self::DiskFullSoon => "disk_full_soon",
            Self::MemoryGrowth => "memory_growth",
            Self::HealthFlapping => "health_flapping",
        }
    }

    /// Every kind.
    pub const ALL: [AnomalyKind; 7] = [
        Self::NewErrorTemplate,
        Self::TemplateRateSpike,
        Self::ErrorRateSpike,
        Self::CrashLoop,
        Self::DiskFullSoon,
        Self::MemoryGrowth,
        Self::HealthFlapping,
    ];

    /// Parses [`Self::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// What shows the anomaly.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AnomalyEvidence {
    /// The log template involved, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_id: Option<i64>,
    /// Sample lines (most recent last; each bounded in length).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<String>,
    /// The metric series the window is of (`service/metric`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<String>,
    /// The metric window (counts per bucket for rate spikes), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub window: Vec<crate::MetricPoint>,
    /// Figures of the judgement: `count`, `baseline_median`, `z`,
    /// `hours_until_full`, `slope_per_hour`, `restarts` …
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub figures: BTreeMap<String, f64>,
}

/// One anomaly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Anomaly {
    pub id: i64,
    pub at_ms: i64,
    /// Service id (`container:web`), or `host`.
    pub service: String,
    pub kind: AnomalyKind,
    /// One sentence: what happened.
    pub summary: String,
    pub evidence: AnomalyEvidence,
}

/// `GET /v1/anomalies`: newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AnomalyList {
    pub anomalies: Vec<Anomaly>,
}
