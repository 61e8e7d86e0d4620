-- 0004: changes of the services' health (healthy, starting, unhealthy,
-- down), with the reason; uptime is computed from these.

CREATE TABLE health_events (
    id          INTEGER NOT NULL PRIMARY KEY,
    at_ms       INTEGER NOT NULL,
    service_id  TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    reason      TEXT    NOT NULL
) STRICT;

-- One service's history by time.
CREATE INDEX health_events_by_service ON health_events (service_id, at_ms);
