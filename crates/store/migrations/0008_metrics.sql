-- Metric time series. Each series (e.g. `host/cpu.percent`) has an id; its
-- points live in one table keyed by (series, tier, time), so a range query
-- is one b-tree range scan. Tier 0 holds raw samples (avg = min = max);
-- tiers 1-3 hold rollups over 1 min, 10 min and 1 h buckets.
CREATE TABLE metric_series (
    id        INTEGER NOT NULL PRIMARY KEY,
    name      TEXT    NOT NULL UNIQUE,
    -- The tenant that may read the series (a sandbox's); NULL: admins only.
    tenant_id TEXT,
    last_t    INTEGER NOT NULL,
    last_value REAL   NOT NULL
) STRICT;

CREATE TABLE metric_points (
    series_id INTEGER NOT NULL,
    tier      INTEGER NOT NULL,
    t         INTEGER NOT NULL,
    avg       REAL    NOT NULL,
    min       REAL    NOT NULL,
    max       REAL    NOT NULL,
    PRIMARY KEY (series_id, tier, t)
) STRICT, WITHOUT ROWID;

-- How far each rollup tier has been computed (exclusive end, ms).
CREATE TABLE metric_rollups (
    tier       INTEGER NOT NULL PRIMARY KEY,
    done_until INTEGER NOT NULL
) STRICT;
