//! `[anomaly]`: how the detectors judge.

use serde::{Deserialize, Serialize};

/// `[anomaly]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnomalyConfig {
    pub enabled: bool,
    /// Width of a counting bucket for rate spikes.
    pub bucket_seconds: u64,
    /// Closed buckets a rate's baseline spans.
    pub baseline_buckets: usize,
    /// Closed buckets needed before a rate is judged.
    pub min_baseline_buckets: usize,
    /// Robust z-score (median/MAD) a bucket must exceed to be a spike.
    pub z: f64,
    /// Error lines a bucket must hold to be an error-rate spike.
    pub error_floor: u64,
    /// Lines of one template a bucket must hold to be a template-rate spike.
    pub template_floor: u64,
    /// How long a service's logs are watched before a new error template counts.
    pub new_template_warm_up_seconds: u64,
    /// Health changes within `flap_window_seconds` that make flapping.
    pub flap_changes: usize,
    pub flap_window_seconds: u64,
    /// Warn when a filesystem fills within this many hours at its current pace.
    pub disk_full_hours: f64,
    /// The window trends are fitted over (they need at least half of it).
    pub trend_window_minutes: u64,
    /// How often trends are judged.
    pub trend_interval_seconds: u64,
    /// Least memory growth per hour that is reported (with a steady line).
    pub memory_growth_min_mib_per_hour: f64,
    /// The same anomaly (service, kind, template or series) is reported at
    /// most once in this many seconds.
    pub repeat_after_seconds: u64,
    /// Days anomalies are kept.
    pub retention_days: u64,
    /// Templates tracked for rate spikes at most (least recently seen dropped).
    pub max_tracked_templates: usize,
}

impl Default for AnomalyConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            bucket_seconds: 60,
            baseline_buckets: 60,
            min_baseline_buckets: 5,
            z: 5.0,
            error_floor: 10,
            template_floor: 50,
            new_template_warm_up_seconds: 300,
            flap_changes: 4,
            flap_window_seconds: 600,
            disk_full_hours: 24.0,
            trend_window_minutes: 60,
            trend_interval_seconds: 120,
            memory_growth_min_mib_per_hour: 32.0,
            repeat_after_seconds: 600,
            retention_days: 30,
            max_tracked_templates: 10_000,
        }
    }
}

impl AnomalyConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.bucket_seconds == 0 || self.baseline_buckets == 0 || self.flap_window_seconds == 0 {
            return Err("anomaly.bucket_seconds, baseline_buckets and flap_window_seconds must be at least 1".into());
        }
        if self.min_baseline_buckets > self.baseline_buckets {
            return Err("anomaly.min_baseline_buckets cannot exceed anomaly.baseline_buckets".into());
        }
        let positive = |v: f64| v.is_finite() && v > 0.0;
        if !positive(self.z) || !positive(self.disk_full_hours) {
            return Err("anomaly.z and anomaly.disk_full_hours must be positive numbers".into());
        }
        if self.flap_changes < 2 {
            return Err("anomaly.flap_changes must be at least 2".into());
        }
        if self.trend_window_minutes == 0 || self.trend_interval_seconds == 0 {
            return Err("anomaly.trend_window_minutes and anomaly.trend_interval_seconds must be at least 1".into());
        }
        Ok(())
    }
}
