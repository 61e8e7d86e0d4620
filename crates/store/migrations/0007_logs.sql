-- 0007: log lines followed from containers, files and sandbox runs, the
-- templates they were mined into, full-text search over them, and where
-- each follower is (so a restart neither loses nor repeats lines).

CREATE TABLE log_templates (
    id             INTEGER NOT NULL PRIMARY KEY,
    service        TEXT    NOT NULL,
    text           TEXT    NOT NULL,
    level          TEXT    NOT NULL,
    first_seen_ms  INTEGER NOT NULL,
    last_seen_ms   INTEGER NOT NULL,
    count          INTEGER NOT NULL
) STRICT;

CREATE INDEX log_templates_by_service ON log_templates (service, last_seen_ms);

CREATE TABLE log_lines (
    id           INTEGER NOT NULL PRIMARY KEY,
    at_ms        INTEGER NOT NULL,
    service      TEXT    NOT NULL,
    -- Set for a sandbox's lines: the tenant that may read them.
    tenant_id    TEXT,
    stream       TEXT    NOT NULL,
    level        TEXT    NOT NULL,
    template_id  INTEGER NOT NULL,
    line         TEXT    NOT NULL
) STRICT;

-- No index on time alone: every line would pay for it. Retention goes
-- service by service through this one, and ids follow arrival order.
CREATE INDEX log_lines_by_service ON log_lines (service, at_ms);
CREATE INDEX log_lines_by_tenant ON log_lines (tenant_id, at_ms) WHERE tenant_id IS NOT NULL;

-- Words only (no positions: `detail = none` costs a third of full detail);
-- searches check the exact text of the candidates with LIKE.
CREATE VIRTUAL TABLE log_fts USING fts5(
    line, content = 'log_lines', content_rowid = 'id', detail = none, columnsize = 0, tokenize = 'ascii'
);

CREATE TRIGGER log_lines_fts_insert AFTER INSERT ON log_lines BEGIN
    INSERT INTO log_fts (rowid, line) VALUES (new.id, new.line);
END;

CREATE TRIGGER log_lines_fts_delete AFTER DELETE ON log_lines BEGIN
    INSERT INTO log_fts (log_fts, rowid, line) VALUES ('delete', old.id, old.line);
END;

-- `file:<path>` (inode, byte offset) or `container:<id>` (last Docker
-- timestamp in ns in `offset`).
CREATE TABLE log_cursors (
    source      TEXT    NOT NULL PRIMARY KEY,
    inode       INTEGER NOT NULL,
    offset      INTEGER NOT NULL,
    at_ms       INTEGER NOT NULL
) STRICT;
