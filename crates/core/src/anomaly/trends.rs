//! Resource trends from the stored metrics: a filesystem filling up within
//! `anomaly.disk_full_hours`, and memory growing steadily. Judged every
//! few minutes over the last `anomaly.trend_window_minutes`.

use std::time::Duration;

use superserver_ops::anomaly::trend::{hours_until_full, steady_growth, FullRule, GrowthRule};
use superserver_ops::anomaly::Point;
use superserver_wire::{AnomalyEvidence, AnomalyKind, MetricPoint};

use super::detect::Found;
use crate::service::{now_ms, Service};

const MIB: f64 = 1_048_576.0;

fn points(window: &[MetricPoint]) -> Vec<Point> {
    window.iter().map(|p| (p.t_ms, p.avg)).collect()
}

impl Service {
    pub(crate) async fn trend_loop(self) {
        let every = Duration::from_secs(self.inner.cfg.anomaly.trend_interval_seconds);
        loop {
            tokio::select! {
                _ = self.inner.cancel.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            for f in self.judge_trends().await {
                self.record_anomaly(f).await;
            }
        }
    }

    /// One look at every filesystem and memory series.
    pub(crate) async fn judge_trends(&self) -> Vec<Found> {
        let cfg = &self.inner.cfg.anomaly;
        let window_ms = (cfg.trend_window_minutes as i64) * 60_000;
        let now = now_ms();
        let full = FullRule { within_hours: cfg.disk_full_hours, min_span_ms: window_ms / 2, min_r2: 0.8 };
        let growth = GrowthRule {
            min_span_ms: window_ms / 2,
            min_r2: 0.9,
            min_fraction_per_hour: 0.10,
            min_per_hour: cfg.memory_growth_min_mib_per_hour * MIB,
        };
        let mut out = Vec::new();
        for series in self.metric_names() {
            let Some((service, metric)) = series.split_once('/') else { continue };
            let disk = metric.starts_with("fs.used_percent:");
            let memory = metric == "memory.bytes" || metric == "memory.rss_bytes";
            if !(disk || memory) || service.starts_with("sandbox:") {
                continue;
            }
            let Ok(window) = self.metric_window(&series, now - window_ms, now).await else { continue };
            let pts = points(&window);
            let evidence = |figures: Vec<(&str, f64)>| AnomalyEvidence {
                series: Some(series.clone()),
                window: window.clone(),
                figures: figures.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
                ..AnomalyEvidence::default()
            };
            if disk {
                if let Some(hours) = hours_until_full(&pts, 100.0, full) {
                    let mount = metric.trim_start_matches("fs.used_percent:");
                    let used = pts.last().map_or(0.0, |p| p.1);
                    out.push(Found {
                        service: service.to_string(),
                        kind: AnomalyKind::DiskFullSoon,
                        key: series.clone(),
                        summary: format!("{mount} is {used:.1} % full and fills up in about {hours:.1} h at this pace"),
                        evidence: evidence(vec![("hours_until_full", hours), ("used_percent", used)]),
                    });
                }
            } else if let Some(fit) = steady_growth(&pts, growth) {
                out.push(Found {
                    service: service.to_string(),
                    kind: AnomalyKind::MemoryGrowth,
                    key: series.clone(),
                    summary: format!(
                        "{service}: memory grows steadily, {:.1} MiB an hour (now {:.1} MiB)",
                        fit.slope_per_hour / MIB,
                        fit.last_value / MIB
                    ),
                    evidence: evidence(vec![
                        ("slope_bytes_per_hour", fit.slope_per_hour),
                        ("r2", fit.r2),
                        ("bytes", fit.last_value),
                    ]),
                });
            }
        }
        out
    }
}
