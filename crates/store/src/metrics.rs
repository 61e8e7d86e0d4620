//! Metric time series: raw samples and their rollups (avg/min/max over 1 min,
//! 10 min and 1 h buckets), kept for a time per tier and under a size cap.
//!
//! Points are keyed by (series, tier, t) in a `WITHOUT ROWID` table, so the
//! points of one series in a time range are one contiguous b-tree range.

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::Result;
use crate::records::query_all;
use crate::store::Store;

/// Bucket width of each tier, ms (tier 0 is raw).
pub const TIER_BUCKET_MS: [i64; 4] = [0, 60_000, 600_000, 3_600_000];

/// One point: a raw sample (avg = min = max) or a rollup bucket starting at `t`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricPoint {
    pub t: i64,
    pub avg: f64,
    pub min: f64,
    pub max: f64,
}

/// A series and its latest value.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSeriesRecord {
    pub id: i64,
    pub name: String,
    /// The tenant that may read it besides admins (a sandbox's owner).
    pub tenant_id: Option<String>,
    pub last_t: i64,
    pub last_value: f64,
}

/// A sample to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSample {
    pub series: String,
    pub tenant_id: Option<String>,
    pub value: f64,
}

/// How long each tier is kept (ms) and the size cap (bytes) of the metric tables.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricsRetention {
    pub keep_ms: [i64; 4],
    pub max_bytes: u64,
}

/// What one maintenance pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MaintainReport {
    pub rolled_up: usize,
    pub expired: usize,
    /// Points dropped, oldest first, to stay under the size cap.
    pub dropped_for_size: usize,
    /// The metric tables' size after the pass, bytes.
    pub bytes: u64,
}

impl Store {
    /// Records one round of samples taken at `t` (ms), in one commit.
    pub async fn insert_metric_samples(&self, t: i64, samples: Vec<NewSample>) -> Result<()> {
        self.write(move |c| {
            let mut series = c.prepare_cached(
                "INSERT INTO metric_series (name, tenant_id, last_t, last_value) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(name) DO UPDATE SET last_t = excluded.last_t, last_value = excluded.last_value,
                     tenant_id = excluded.tenant_id
                 RETURNING id",
            )?;
            let mut point = c.prepare_cached(
                "INSERT OR REPLACE INTO metric_points (series_id, tier, t, avg, min, max) VALUES (?1, 0, ?2, ?3, ?3, ?3)",
            )?;
            for s in &samples {
                if !s.value.is_finite() {
                    continue;
                }
                let id: i64 = series.query_row(params![s.series, s.tenant_id, t, s.value], |r| r.get(0))?;
                point.execute(params![id, t, s.value])?;
            }
            Ok(())
        })
        .await
    }

    /// Every series, by name.
    pub async fn metric_series(&self) -> Result<Vec<MetricSeriesRecord>> {
        self.read(|c| {
            query_all(c, "SELECT id, name, tenant_id, last_t, last_value FROM metric_series ORDER BY name", [], |r| {
                Ok(series_row(r)?)
            })
        })
        .await
    }

    /// One series by name.
    pub async fn metric_series_named(&self, name: String) -> Result<Option<MetricSeriesRecord>> {
        self.read(move |c| {
            Ok(c.query_row(
                "SELECT id, name, tenant_id, last_t, last_value FROM metric_series WHERE name = ?1",
                [name],
                series_row,
            )
            .optional()?)
        })
        .await
    }

    /// The points of a series in one tier with `from <= t < to`, oldest first.
    pub async fn metric_points(&self, series_id: i64, tier: usize, from: i64, to: i64) -> Result<Vec<MetricPoint>> {
        self.read(move |c| {
            query_all(
                c,
                "SELECT t, avg, min, max FROM metric_points WHERE series_id = ?1 AND tier = ?2 AND t >= ?3 AND t < ?4
                 ORDER BY t",
                params![series_id, tier as i64, from, to],
                |r: &rusqlite::Row<'_>| {
                    Ok(MetricPoint { t: r.get(0)?, avg: r.get(1)?, min: r.get(2)?, max: r.get(3)? })
                },
            )
        })
        .await
    }

    /// Rolls finished buckets up, expires each tier's old points, and drops
    /// the oldest points while the metric tables exceed the size cap. One commit.
    pub async fn maintain_metrics(&self, now: i64, retention: MetricsRetention) -> Result<MaintainReport> {
        self.write(move |c| {
            let mut rep = MaintainReport { rolled_up: rollup(c, now)?, ..Default::default() };
            for (tier, keep) in retention.keep_ms.iter().enumerate() {
                rep.expired += c.execute(
                    "DELETE FROM metric_points WHERE series_id IN (SELECT id FROM metric_series) AND tier = ?1 AND t < ?2",
                    params![tier as i64, now - keep],
                )?;
            }
            let max_keep = retention.keep_ms.iter().copied().max().unwrap_or(0);
            c.execute("DELETE FROM metric_series WHERE last_t < ?1", [now - max_keep])?;
            rep.bytes = metrics_bytes(c)?;
            // Each pass drops the oldest tenth of the time span held.
            for _ in 0..40 {
                if rep.bytes <= retention.max_bytes {
                    break;
                }
                let Some(oldest) = oldest_point(c)? else { break };
                let cutoff = oldest + ((now - oldest) / 10).max(1);
                let n = c.execute(
                    "DELETE FROM metric_points WHERE series_id IN (SELECT id FROM metric_series) AND tier IN (0, 1, 2, 3)
                     AND t < ?1",
                    [cutoff],
                )?;
                rep.dropped_for_size += n;
                rep.bytes = metrics_bytes(c)?;
            }
            Ok(rep)
        })
        .await
    }

    /// The metric tables' size on disk, bytes.
    pub async fn metrics_bytes(&self) -> Result<u64> {
        self.read(metrics_bytes).await
    }
}

fn series_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MetricSeriesRecord> {
    Ok(MetricSeriesRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        tenant_id: r.get(2)?,
        last_t: r.get(3)?,
        last_value: r.get(4)?,
    })
}

/// Computes every finished bucket of tiers 1-3 not yet computed, each from
/// the tier below.
fn rollup(c: &Connection, now: i64) -> Result<usize> {
    let mut n = 0;
    for (tier, &b) in TIER_BUCKET_MS.iter().enumerate().skip(1) {
        let until = now.div_euclid(b) * b;
        let done: i64 = c
            .query_row("SELECT done_until FROM metric_rollups WHERE tier = ?1", [tier as i64], |r| r.get(0))
            .optional()?
            .unwrap_or(0);
        if until <= done {
            continue;
        }
        n += c.execute(
            "INSERT OR REPLACE INTO metric_points (series_id, tier, t, avg, min, max)
             SELECT p.series_id, ?1, (p.t / ?2) * ?2, avg(p.avg), min(p.min), max(p.max)
             FROM metric_series s JOIN metric_points p
               ON p.series_id = s.id AND p.tier = ?1 - 1 AND p.t >= ?3 AND p.t < ?4
             GROUP BY p.series_id, p.t / ?2",
            params![tier as i64, b, done, until],
        )?;
        c.execute(
            "INSERT INTO metric_rollups (tier, done_until) VALUES (?1, ?2)
             ON CONFLICT(tier) DO UPDATE SET done_until = excluded.done_until",
            params![tier as i64, until],
        )?;
    }
    Ok(n)
}

fn oldest_point(c: &Connection) -> Result<Option<i64>> {
    Ok(c.query_row(
        "SELECT min((SELECT min(t) FROM metric_points p WHERE p.series_id = s.id AND p.tier = k.tier))
         FROM metric_series s, (SELECT 0 AS tier UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3) k",
        [],
        |r| r.get(0),
    )?)
}

/// Bytes of the pages holding the metric tables and their index, from the
/// `dbstat` table.
fn metrics_bytes(c: &Connection) -> Result<u64> {
    let n: i64 = c.query_row(
        "SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name IN ('metric_points', 'metric_series')
         OR name LIKE 'sqlite_autoindex_metric_series%'",
        [],
        |r| r.get(0),
    )?;
    Ok(u64::try_from(n).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;
    const DAY: i64 = 24 * H;

    fn sample(series: &str, value: f64) -> NewSample {
        NewSample { series: series.into(), tenant_id: None, value }
    }

    fn retention() -> MetricsRetention {
        MetricsRetention { keep_ms: [DAY, 7 * DAY, 30 * DAY, 365 * DAY], max_bytes: u64::MAX }
    }

    #[tokio::test]
    async fn rollups_keep_avg_min_max_and_tiers_expire() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let t0 = 1_000 * DAY; // aligned to every bucket
                              // Two minutes of samples every 10 s: 0..5 then 10..15.
        for i in 0..12 {
            let v = if i < 6 { i as f64 } else { 10.0 + (i - 6) as f64 };
            s.insert_metric_samples(t0 + i * 10_000, vec![sample("host/x", v)]).await.unwrap();
        }
        let rep = s.maintain_metrics(t0 + 120_000, retention()).await.unwrap();
        assert_eq!(rep.rolled_up, 2);
        let id = s.metric_series_named("host/x".into()).await.unwrap().unwrap().id;
        let m = s.metric_points(id, 1, t0, t0 + 120_000).await.unwrap();
        assert_eq!(
            m,
            vec![
                MetricPoint { t: t0, avg: 2.5, min: 0.0, max: 5.0 },
                MetricPoint { t: t0 + 60_000, avg: 12.5, min: 10.0, max: 15.0 },
            ]
        );
        // The 10 min and 1 h buckets are not finished yet.
        assert!(s.metric_points(id, 2, 0, i64::MAX).await.unwrap().is_empty());
        let rep = s.maintain_metrics(t0 + H, retention()).await.unwrap();
        assert!(rep.rolled_up >= 2);
        let hour = s.metric_points(id, 3, 0, i64::MAX).await.unwrap();
        assert_eq!(hour, vec![MetricPoint { t: t0, avg: 7.5, min: 0.0, max: 15.0 }]);

        // A day and a bit later raw points are gone, rollups stay.
        s.insert_metric_samples(t0 + DAY + H, vec![sample("host/x", 1.0)]).await.unwrap();
        let rep = s.maintain_metrics(t0 + DAY + H, retention()).await.unwrap();
        assert_eq!(rep.expired, 12);
        assert_eq!(s.metric_points(id, 0, 0, i64::MAX).await.unwrap().len(), 1);
        assert_eq!(s.metric_points(id, 1, 0, i64::MAX).await.unwrap().len(), 2);
        let latest = s.metric_series_named("host/x".into()).await.unwrap().unwrap();
        assert_eq!((latest.last_t, latest.last_value), (t0 + DAY + H, 1.0));
    }

    #[tokio::test]
    async fn size_cap_drops_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let t0 = 1_000 * DAY;
        // 20 series × 2000 rounds (10 s apart, ~5.5 h).
        for round in 0..2000 {
            let samples = (0..20).map(|i| sample(&format!("container:c{i}/memory.bytes"), round as f64)).collect();
            s.insert_metric_samples(t0 + round * 10_000, samples).await.unwrap();
        }
        let now = t0 + 2000 * 10_000;
        let before = s.metrics_bytes().await.unwrap();
        let cap = before / 2;
        let rep = s.maintain_metrics(now, MetricsRetention { max_bytes: cap, ..retention() }).await.unwrap();
        assert!(rep.dropped_for_size > 0);
        assert!(rep.bytes <= cap, "{} > {cap}", rep.bytes);
        // The newest raw points survive; the oldest are gone.
        let id = s.metric_series_named("container:c0/memory.bytes".into()).await.unwrap().unwrap().id;
        let raw = s.metric_points(id, 0, 0, i64::MAX).await.unwrap();
        assert_eq!(raw.last().unwrap().t, now - 10_000);
        assert!(raw.first().unwrap().t > t0);
    }
}
