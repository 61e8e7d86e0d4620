-- 0005: anomalies the detectors found, with their evidence (JSON).

CREATE TABLE anomalies (
    id          INTEGER NOT NULL PRIMARY KEY,
    at_ms       INTEGER NOT NULL,
    service_id  TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    summary     TEXT    NOT NULL,
    evidence    TEXT    NOT NULL
) STRICT;

CREATE INDEX anomalies_by_time ON anomalies (at_ms);
CREATE INDEX anomalies_by_service ON anomalies (service_id, at_ms);
