-- 0006: alerts (one open alert per fingerprint), their history, and silences.

CREATE TABLE alerts (
    id                  TEXT    NOT NULL PRIMARY KEY,
    fingerprint         TEXT    NOT NULL,
    rule                TEXT    NOT NULL,
    rule_kind           TEXT    NOT NULL,
    service_id          TEXT    NOT NULL,
    severity            TEXT    NOT NULL,
    state               TEXT    NOT NULL CHECK (state IN ('firing', 'resolved')),
    summary             TEXT    NOT NULL,
    started_at_ms       INTEGER NOT NULL,
    resolved_at_ms      INTEGER,
    acked_by            TEXT,
    acked_at_ms         INTEGER,
    notifications       INTEGER NOT NULL DEFAULT 0,
    last_notified_at_ms INTEGER,
    context             TEXT    NOT NULL
) STRICT;

-- Deduplication: at most one firing alert per fingerprint.
CREATE UNIQUE INDEX alerts_open_fingerprint ON alerts (fingerprint) WHERE state = 'firing';
CREATE INDEX alerts_by_fingerprint ON alerts (fingerprint, started_at_ms);
CREATE INDEX alerts_by_service ON alerts (service_id, started_at_ms);

CREATE TABLE alert_events (
    id        INTEGER NOT NULL PRIMARY KEY,
    alert_id  TEXT    NOT NULL REFERENCES alerts (id),
    at_ms     INTEGER NOT NULL,
    kind      TEXT    NOT NULL,
    detail    TEXT    NOT NULL
) STRICT;

CREATE INDEX alert_events_by_alert ON alert_events (alert_id, id);

CREATE TABLE silences (
    id            TEXT    NOT NULL PRIMARY KEY,
    rule          TEXT,
    service_id    TEXT,
    until_ms      INTEGER NOT NULL,
    reason        TEXT    NOT NULL,
    created_by    TEXT    NOT NULL,
    created_at_ms INTEGER NOT NULL
) STRICT;
