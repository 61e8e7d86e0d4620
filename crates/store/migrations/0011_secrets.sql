-- Custody secrets. A value is stored only sealed (AEAD under the
-- installation's secrets key, bound to its tenant and name); the API never
-- returns it.
CREATE TABLE secrets (
    tenant_id TEXT NOT NULL,
    name TEXT NOT NULL,
    -- nonce || ciphertext || tag
    sealed BLOB NOT NULL,
    -- Which key sealed it (the first bytes of the key's SHA-256, hex).
    key_id TEXT NOT NULL,
    -- JSON array of names and `*.suffix` patterns the value may be sent to.
    hosts_json TEXT NOT NULL,
    header TEXT,
    template TEXT,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    updated_by TEXT,
    PRIMARY KEY (tenant_id, name)
) WITHOUT ROWID;

-- Which secrets each sandbox held (names only).
CREATE TABLE sandbox_secrets (
    sandbox_id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    name TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (sandbox_id, name)
) WITHOUT ROWID;
CREATE INDEX sandbox_secrets_name ON sandbox_secrets (tenant_id, name, at_ms);
