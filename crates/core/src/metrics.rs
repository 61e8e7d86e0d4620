//! Metrics: a sampling loop (every `metrics.interval_seconds`) that reads
//! the host, the running containers and processes discovery found, and the
//! live sandboxes, and records each round in the store in one commit; a
//! maintenance pass each minute rolls raw points up and enforces retention
//! and the size cap. Host, container and process series are admins';
//! a sandbox's series is also its tenant's.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use superserver_ops::metrics::{Collector, Sample, Target, TargetKind};
use superserver_store::{MetricsRetention, NewSample, TIER_BUCKET_MS};
use superserver_wire::{MetricPoint, MetricQueryResult, MetricSeries, MetricSeriesList};

use crate::error::{CoreError, Result};
use crate::service::{now_ms, Service};
use crate::tenancy::Caller;

/// `[metrics]` in the config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Sample the host, containers, processes and sandboxes.
    pub enabled: bool,
    /// Seconds between two samples.
    pub interval_seconds: u64,
    /// Hours raw samples are kept.
    pub raw_retention_hours: u64,
    /// Days 1 min rollups are kept.
    pub minute_retention_days: u64,
    /// Days 10 min rollups are kept.
    pub ten_minute_retention_days: u64,
    /// Days 1 h rollups are kept.
    pub hour_retention_days: u64,
    /// Size cap of the stored series, MiB; the oldest points go first.
    pub max_disk_mb: u64,
    /// At most this many services' current values on `/metrics` (the host's
    /// always), to bound label cardinality.
    pub max_exported_services: usize,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval_seconds: 10,
            raw_retention_hours: 24,
            minute_retention_days: 7,
            ten_minute_retention_days: 30,
            hour_retention_days: 365,
            max_disk_mb: 1024,
            max_exported_services: 100,
        }
    }
}

impl MetricsConfig {
    pub(crate) fn validate(&self) -> Result<()> {
        if self.interval_seconds == 0 {
            return Err(CoreError::Config("metrics.interval_seconds must be at least 1".into()));
        }
        if self.max_disk_mb == 0 {
            return Err(CoreError::Config("metrics.max_disk_mb must be at least 1".into()));
        }
        let keep = self.retention().keep_ms;
        if keep.iter().any(|k| *k <= 0) || keep.windows(2).any(|w| w[0] > w[1]) {
            return Err(CoreError::Config(
                "metrics retentions must be positive and not shorter for coarser tiers \
                 (raw <= minute <= ten_minute <= hour)"
                    .into(),
            ));
        }
        Ok(())
    }

    fn retention(&self) -> MetricsRetention {
        let day = 86_400_000i64;
        let ms = |n: u64, unit: i64| i64::try_from(n).unwrap_or(i64::MAX / unit).saturating_mul(unit);
        MetricsRetention {
            keep_ms: [
                ms(self.raw_retention_hours, 3_600_000),
                ms(self.minute_retention_days, day),
                ms(self.ten_minute_retention_days, day),
                ms(self.hour_retention_days, day),
            ],
            max_bytes: self.max_disk_mb.saturating_mul(1 << 20),
        }
    }
}

/// The latest round, for `/metrics` and the alert rules.
#[derive(Default)]
pub(crate) struct MetricsState {
    latest: Mutex<Arc<Latest>>,
    /// Woken after each round is stored.
    pub sampled: tokio::sync::Notify,
}

#[derive(Default)]
struct Latest {
    at_ms: i64,
    values: HashMap<String, f64>,
}

/// Names of the stored tiers.
const TIER_NAMES: [&str; 4] = ["raw", "1m", "10m", "1h"];
/// Aim for at most this many points when no step is given.
const TARGET_POINTS: i64 = 1500;
/// Read a finer tier only if the range holds at most this many of its points.
const MAX_READ_POINTS: i64 = 20_000;

impl Service {
    /// Starts the sampling loop, if enabled.
    pub(crate) fn start_metrics(&self) {
        if !self.inner.cfg.metrics.enabled {
            return;
        }
        let svc = self.clone();
        tokio::spawn(async move { svc.metrics_loop().await });
    }

    async fn metrics_loop(self) {
        let cfg = self.inner.cfg.metrics.clone();
        let every = Duration::from_secs(cfg.interval_seconds);
        let fs = vec![PathBuf::from("/"), self.inner.cfg.data_dir.clone()];
        let collector = Arc::new(Mutex::new(Collector::new(fs)));
        let mut last_maintain: Option<Instant> = None;
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.inner.cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            let (targets, owners) = self.metric_targets();
            let c = collector.clone();
            let samples =
                tokio::task::spawn_blocking(move || c.lock().unwrap_or_else(|e| e.into_inner()).collect(&targets))
                    .await
                    .unwrap_or_default();
            let at_ms = now_ms();
            self.record_round(at_ms, samples, &owners).await;
            if last_maintain.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                last_maintain = Some(Instant::now());
                match self.inner.store.maintain_metrics(at_ms, cfg.retention()).await {
                    Ok(r) if r.dropped_for_size > 0 => {
                        tracing::warn!(
                            dropped = r.dropped_for_size,
                            bytes = r.bytes,
                            "metrics over max_disk_mb: oldest points dropped"
                        )
                    }
                    Ok(r) => tracing::debug!(
                        rolled_up = r.rolled_up,
                        expired = r.expired,
                        bytes = r.bytes,
                        "metrics maintained"
                    ),
                    Err(e) => tracing::error!(error = %e, "cannot maintain metrics"),
                }
            }
        }
    }

    /// What to sample this round, and the owner tenant of each sandbox target.
    fn metric_targets(&self) -> (Vec<Target>, HashMap<String, String>) {
        let mut targets = Vec::new();
        if let Some(snap) = self.inner.discovered.get() {
            for s in &snap.services {
                let kind = match (&s.container, &s.unit) {
                    (Some(c), _) => match (c.state.as_str(), c.pid) {
                        ("running", Some(pid)) => TargetKind::Container { pid },
                        _ => continue,
                    },
                    (None, Some(u)) => {
                        let mut pids = s.pids.clone();
                        pids.extend(u.main_pid.filter(|p| !s.pids.contains(p)));
                        TargetKind::Processes { pids }
                    }
                    (None, None) => TargetKind::Processes { pids: s.pids.clone() },
                };
                targets.push(Target { service: s.id.clone(), kind });
            }
        }
        let mut owners = HashMap::new();
        let live = self.inner.live.lock().unwrap_or_else(|e| e.into_inner());
        for l in live.values() {
            let service = format!("sandbox:{}", l.id);
            owners.insert(service.clone(), l.tenant_id.clone());
            targets.push(Target { service, kind: TargetKind::Cgroup { rel: l.cgroup.to_string_lossy().into_owned() } });
        }
        (targets, owners)
    }

    async fn record_round(&self, at_ms: i64, samples: Vec<Sample>, owners: &HashMap<String, String>) {
        let values: HashMap<String, f64> = samples.iter().map(|s| (s.series.clone(), s.value)).collect();
        let rows = samples
            .into_iter()
            .map(|s| {
                let tenant_id = s.series.split_once('/').and_then(|(svc, _)| owners.get(svc).cloned());
                NewSample { series: s.series, tenant_id, value: s.value }
            })
            .collect();
        if let Err(e) = self.inner.store.insert_metric_samples(at_ms, rows).await {
            tracing::error!(error = %e, "cannot record metrics");
        }
        *self.inner.metrics.latest.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(Latest { at_ms, values });
        self.inner.metrics.sampled.notify_waiters();
    }

    fn metrics_enabled(&self) -> Result<()> {
        if self.inner.cfg.metrics.enabled {
            Ok(())
        } else {
            Err(CoreError::Unavailable("metrics are off (metrics.enabled = false)".into()))
        }
    }

    /// `GET /v1/metrics/series`: the series the caller may read.
    pub async fn metric_series(&self, caller: &Caller) -> Result<MetricSeriesList> {
        self.metrics_enabled()?;
        let all = self.inner.store.metric_series().await?;
        let series = all
            .into_iter()
            .filter(|s| caller.is_admin() || s.tenant_id.as_deref() == Some(caller.tenant_id()))
            .map(|s| MetricSeries { name: s.name, last_t_ms: s.last_t, last_value: s.last_value })
            .collect();
        Ok(MetricSeriesList { series })
    }

    /// `GET /v1/metrics/query`: the points of `series` in `[from_ms, to_ms)`
    /// (default: the last hour), `step_ms` wide (default: about 1500 points
    /// over the range, never finer than the tier read). Series the caller may not read are not found.
    pub async fn metric_query(
        &self,
        caller: &Caller,
        series: &str,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
        step_ms: Option<i64>,
    ) -> Result<MetricQueryResult> {
        self.metrics_enabled()?;
        let to = to_ms.unwrap_or_else(now_ms);
        let from = from_ms.unwrap_or(to - 3_600_000);
        if from >= to {
            return Err(CoreError::InvalidRequest(format!("from ({from}) must be before to ({to})")));
        }
        if to - from > 400 * 86_400_000 {
            return Err(CoreError::InvalidRequest("the range may span at most 400 days".into()));
        }
        if let Some(s) = step_ms {
            if s < 1000 {
                return Err(CoreError::InvalidRequest(format!("step must be at least 1s, not {s} ms")));
            }
            if (to - from) / s > 100_000 {
                return Err(CoreError::InvalidRequest("step too small for the range: over 100000 points".into()));
            }
        }
        let rec = self.inner.store.metric_series_named(series.to_string()).await?;
        let rec = match rec {
            Some(r) if caller.is_admin() || r.tenant_id.as_deref() == Some(caller.tenant_id()) => r,
            _ => return Err(CoreError::SeriesNotFound(series.to_string())),
        };
        let tier = self.pick_tier(from, to);
        let native = self.native_ms(tier);
        let raw = self.inner.store.metric_points(rec.id, tier, from, to).await?;
        let auto = ((to - from) / TARGET_POINTS).div_euclid(1000) * 1000;
        let step = step_ms.unwrap_or(auto).max(native);
        let points = if step > native { rebucket(&raw, step) } else { raw.iter().map(wire_point).collect() };
        Ok(MetricQueryResult {
            series: rec.name,
            from_ms: from,
            to_ms: to,
            step_ms: step,
            tier: TIER_NAMES[tier].to_string(),
            points,
        })
    }

    /// The finest tier that still holds `from` (retention) with at most
    /// [`MAX_READ_POINTS`] points in the range; finer tiers are complete up
    /// to now, rollups only up to their last finished bucket.
    fn pick_tier(&self, from: i64, to: i64) -> usize {
        let keep = self.inner.cfg.metrics.retention().keep_ms;
        let now = now_ms();
        (0..TIER_BUCKET_MS.len())
            // A 1/24 slack: "the last 24 h" reads raw points, not 1 min rollups.
            .find(|t| from >= now - keep[*t] - keep[*t] / 24 && (to - from) / self.native_ms(*t) <= MAX_READ_POINTS)
            .unwrap_or(TIER_BUCKET_MS.len() - 1)
    }

    /// The width of a tier's points: the sampling interval for raw points.
    fn native_ms(&self, tier: usize) -> i64 {
        if tier == 0 {
            i64::try_from(self.inner.cfg.metrics.interval_seconds).unwrap_or(10).saturating_mul(1000)
        } else {
            TIER_BUCKET_MS[tier]
        }
    }

    /// For the alert and anomaly rules: the points of `series` in
    /// `[from_ms, to_ms)`, from the finest tier that holds `from_ms`
    /// (no access check: the caller is the server itself).
    pub(crate) async fn metric_window(&self, series: &str, from_ms: i64, to_ms: i64) -> Result<Vec<MetricPoint>> {
        let rec = self
            .inner
            .store
            .metric_series_named(series.to_string())
            .await?
            .ok_or_else(|| CoreError::SeriesNotFound(series.to_string()))?;
        let tier = self.pick_tier(from_ms, to_ms);
        Ok(self.inner.store.metric_points(rec.id, tier, from_ms, to_ms).await?.iter().map(wire_point).collect())
    }

    /// The latest sampled value of `series` and when (ms), if the last round had it.
    pub(crate) fn metric_latest(&self, series: &str) -> Option<(i64, f64)> {
        let l = self.inner.metrics.latest.lock().unwrap_or_else(|e| e.into_inner()).clone();
        l.values.get(series).map(|v| (l.at_ms, *v))
    }

    /// The series of the latest round.
    pub(crate) fn metric_names(&self) -> Vec<String> {
        self.inner.metrics.latest.lock().unwrap_or_else(|e| e.into_inner()).values.keys().cloned().collect()
    }

    /// The latest round's values for `/metrics`: every host series, and
    /// those of the first `metrics.max_exported_services` other services by
    /// name. Returns (series, value) sorted, and how many services were left out.
    pub fn metrics_current(&self) -> (Vec<(String, f64)>, usize) {
        let l = self.inner.metrics.latest.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut all: Vec<(String, f64)> = l.values.iter().map(|(k, v)| (k.clone(), *v)).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        let mut services: Vec<&str> = all.iter().filter_map(|(k, _)| k.split_once('/').map(|(s, _)| s)).collect();
        services.dedup();
        services.retain(|s| *s != "host");
        let max = self.inner.cfg.metrics.max_exported_services;
        let kept: std::collections::HashSet<String> = services.iter().take(max).map(|s| s.to_string()).collect();
        let left_out = services.len().saturating_sub(max);
        let out = all
            .into_iter()
            .filter(|(k, _)| k.split_once('/').is_some_and(|(s, _)| s == "host" || kept.contains(s)))
            .collect();
        (out, left_out)
    }

    /// Waits until the next sampling round is stored (tests, the CLI's `--wait`).
    pub async fn metrics_sampled(&self) {
        self.inner.metrics.sampled.notified().await;
    }
}

fn wire_point(p: &superserver_store::MetricPoint) -> MetricPoint {
    MetricPoint { t_ms: p.t, avg: p.avg, min: p.min, max: p.max }
}

/// Regroups points into `step`-wide buckets (avg of averages, min, max).
fn rebucket(points: &[superserver_store::MetricPoint], step: i64) -> Vec<MetricPoint> {
    let mut out: Vec<(MetricPoint, u32)> = Vec::new();
    for p in points {
        let t = p.t.div_euclid(step) * step;
        match out.last_mut() {
            Some((b, n)) if b.t_ms == t => {
                b.avg += p.avg;
                b.min = b.min.min(p.min);
                b.max = b.max.max(p.max);
                *n += 1;
            }
            _ => out.push((MetricPoint { t_ms: t, avg: p.avg, min: p.min, max: p.max }, 1)),
        }
    }
    out.into_iter()
        .map(|(mut b, n)| {
            b.avg /= f64::from(n);
            b
        })
        .collect()
}

/// Parses a duration like `30s`, `5m`, `1h`, `7d` (or plain seconds) into ms.
pub fn parse_duration_ms(s: &str) -> Result<i64> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 =
        num.parse().map_err(|_| CoreError::InvalidRequest(format!("bad duration {s:?}: use e.g. 30s, 5m, 1h, 7d")))?;
    let mult = match unit {
        "" | "s" => 1000,
        "ms" => 1,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(CoreError::InvalidRequest(format!("bad duration {s:?}: use e.g. 30s, 5m, 1h, 7d"))),
    };
    n.checked_mul(mult).ok_or_else(|| CoreError::InvalidRequest(format!("duration {s:?} too large")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("1m").unwrap(), 60_000);
        assert_eq!(parse_duration_ms("10").unwrap(), 10_000);
        assert_eq!(parse_duration_ms("2h").unwrap(), 7_200_000);
        assert!(parse_duration_ms("1w").is_err());
        assert!(parse_duration_ms("m").is_err());
    }

    #[test]
    fn rebucketing_keeps_extremes() {
        let p = |t, v| superserver_store::MetricPoint { t, avg: v, min: v, max: v };
        let out = rebucket(&[p(0, 1.0), p(10, 3.0), p(60, 5.0)], 60);
        assert_eq!(
            out,
            vec![
                MetricPoint { t_ms: 0, avg: 2.0, min: 1.0, max: 3.0 },
                MetricPoint { t_ms: 60, avg: 5.0, min: 5.0, max: 5.0 },
            ]
        );
    }

    #[test]
    fn config_checks() {
        assert!(MetricsConfig::default().validate().is_ok());
        let bad = MetricsConfig { raw_retention_hours: 24 * 30, ..Default::default() };
        assert!(bad.validate().is_err());
    }
}
