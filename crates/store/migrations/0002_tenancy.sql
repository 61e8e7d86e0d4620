-- 0002: tenants, API keys, usage metering, the admin audit log, the outbox
-- of webhook and e-mail notifications.
--
-- The `admin` tenant (id `tn_admin`) exists from here on: the bootstrap admin
-- key belongs to it, and so does everything recorded before tenants existed.

CREATE TABLE tenants (
    id             TEXT    NOT NULL PRIMARY KEY,
    name           TEXT    NOT NULL UNIQUE,
    plan           TEXT    NOT NULL,
    email          TEXT,
    -- JSON object: the plan's fields this tenant overrides.
    overrides_json TEXT    NOT NULL DEFAULT '{}',
    suspended      INTEGER NOT NULL DEFAULT 0 CHECK (suspended IN (0, 1)),
    created_at_ms  INTEGER NOT NULL
) STRICT;

INSERT INTO tenants (id, name, plan, created_at_ms)
VALUES ('tn_admin', 'admin', 'enterprise', CAST(unixepoch('subsec') * 1000 AS INTEGER));

CREATE TABLE api_keys (
    id              TEXT    NOT NULL PRIMARY KEY,
    tenant_id       TEXT    NOT NULL REFERENCES tenants (id),
    -- The key's visible start (`ssk_` and 12 characters): how a presented
    -- key finds its row.
    prefix          TEXT    NOT NULL UNIQUE,
    -- SHA-256 of the whole key. The key itself is never stored.
    hash            BLOB    NOT NULL CHECK (length(hash) = 32),
    role            TEXT    NOT NULL CHECK (role IN ('admin', 'owner', 'member', 'viewer')),
    name            TEXT,
    created_at_ms   INTEGER NOT NULL,
    expires_at_ms   INTEGER,
    last_used_at_ms INTEGER,
    revoked_at_ms   INTEGER,
    -- The key that created this one (NULL: the server, at bootstrap).
    created_by      TEXT
) STRICT;

CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id, created_at_ms);

-- Everything recorded before tenants existed belongs to the admin tenant.
ALTER TABLE sandboxes ADD COLUMN tenant_id TEXT NOT NULL DEFAULT 'tn_admin';
CREATE INDEX sandboxes_by_tenant ON sandboxes (tenant_id, created_at_ms);

ALTER TABLE executions ADD COLUMN tenant_id TEXT NOT NULL DEFAULT 'tn_admin';
-- The key that ran the command (NULL before keys existed, or with auth off).
ALTER TABLE executions ADD COLUMN key_id TEXT;
-- The sandbox's memory limit in GB × the command's wall time in seconds.
ALTER TABLE executions ADD COLUMN gb_seconds REAL NOT NULL DEFAULT 0 CHECK (gb_seconds >= 0);
-- 1 once the execution is part of a usage report sent to the webhooks.
ALTER TABLE executions ADD COLUMN usage_reported INTEGER NOT NULL DEFAULT 0 CHECK (usage_reported IN (0, 1));
CREATE INDEX executions_unreported ON executions (tenant_id) WHERE usage_reported = 0;
-- Usage and quota queries: one tenant's executions in a time range.
CREATE INDEX executions_by_tenant ON executions (tenant_id, started_at_ms);
-- Usage of every tenant in a time range (admin reports, billing export).
CREATE INDEX executions_by_started ON executions (started_at_ms);

CREATE TABLE audit_log (
    id             INTEGER NOT NULL PRIMARY KEY,
    at_ms          INTEGER NOT NULL,
    actor_key_id   TEXT,
    actor_tenant   TEXT,
    remote_addr    TEXT,
    action         TEXT    NOT NULL,
    target         TEXT    NOT NULL,
    details_json   TEXT    NOT NULL DEFAULT '{}'
) STRICT;

-- One row per event and destination (a webhook endpoint or an e-mail
-- address). Written in the transaction that produces the event, delivered
-- by a background worker, kept after delivery for the record.
CREATE TABLE outbox (
    id                 INTEGER NOT NULL PRIMARY KEY,
    event_id           TEXT    NOT NULL,
    destination        TEXT    NOT NULL,
    event_type         TEXT    NOT NULL,
    tenant_id          TEXT,
    payload            TEXT    NOT NULL,
    created_at_ms      INTEGER NOT NULL,
    attempts           INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at_ms INTEGER NOT NULL,
    delivered_at_ms    INTEGER,
    -- Given up: a permanent error, or too many attempts.
    failed_at_ms       INTEGER,
    last_error         TEXT,
    UNIQUE (event_id, destination)
) STRICT;

CREATE INDEX outbox_due ON outbox (next_attempt_at_ms)
    WHERE delivered_at_ms IS NULL AND failed_at_ms IS NULL;
