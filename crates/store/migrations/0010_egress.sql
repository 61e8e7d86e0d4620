-- Egress audit: every connection attempt and DNS query of governed
-- sandboxes that their policy's log level keeps.
CREATE TABLE egress_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms INTEGER NOT NULL,
    tenant_id TEXT NOT NULL,
    sandbox_id TEXT NOT NULL,
    execution_id TEXT,
    protocol TEXT NOT NULL,
    name TEXT,
    address TEXT,
    port INTEGER,
    method TEXT,
    path TEXT,
    decision TEXT NOT NULL CHECK (decision IN ('allow', 'deny')),
    rule TEXT NOT NULL,
    bytes_out INTEGER NOT NULL DEFAULT 0,
    bytes_in INTEGER NOT NULL DEFAULT 0,
    duration_ms REAL NOT NULL DEFAULT 0
);
CREATE INDEX egress_events_sandbox ON egress_events (sandbox_id, id);
CREATE INDEX egress_events_tenant ON egress_events (tenant_id, id);
CREATE INDEX egress_events_at ON egress_events (at_ms);

-- A tenant's default `network` for requests that give none (JSON).
ALTER TABLE tenants ADD COLUMN default_network_json TEXT;
