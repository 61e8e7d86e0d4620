-- 0003: changes discovery saw on the host's services (appeared, gone,
-- restarted, state, health or image changed).

CREATE TABLE service_events (
    id          INTEGER NOT NULL PRIMARY KEY,
    at_ms       INTEGER NOT NULL,
    service_id  TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    before      TEXT,
    after       TEXT
) STRICT;

-- One service's history, newest first.
CREATE INDEX service_events_by_service ON service_events (service_id, id);
