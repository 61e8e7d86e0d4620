-- 0001: sandboxes and their executions.
--
-- Applied by src/migrate.rs inside one IMMEDIATE transaction together with its
-- row in schema_migrations. Never edit a migration that has shipped: add the
-- next numbered file instead.

CREATE TABLE sandboxes (
    id            TEXT    NOT NULL PRIMARY KEY,
    kind          TEXT    NOT NULL CHECK (kind IN ('oneshot', 'persistent')),
    state         TEXT    NOT NULL CHECK (state IN ('running', 'destroyed', 'expired', 'lost')),
    image         TEXT    NOT NULL,
    memory_mb     INTEGER NOT NULL CHECK (memory_mb >= 0),
    pids          INTEGER NOT NULL CHECK (pids >= 0),
    cpu_percent   INTEGER NOT NULL CHECK (cpu_percent >= 0),
    disk_mb       INTEGER NOT NULL CHECK (disk_mb >= 0),
    env_json      TEXT    NOT NULL DEFAULT '{}',
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER,
    ended_at_ms   INTEGER,
    end_reason    TEXT,
    host_pid      INTEGER,
    -- Maintained by the triggers below, in the transaction that adds or
    -- removes the execution.
    exec_count    INTEGER NOT NULL DEFAULT 0 CHECK (exec_count >= 0)
) STRICT;

-- list_sandboxes(include_ended = true): newest first.
CREATE INDEX sandboxes_by_created ON sandboxes (created_at_ms);
-- running_sandboxes, list_sandboxes(include_ended = false), mark_running_lost.
CREATE INDEX sandboxes_by_state ON sandboxes (state, created_at_ms);
-- lost_sandboxes(since_ms).
CREATE INDEX sandboxes_lost_by_ended ON sandboxes (ended_at_ms)
    WHERE state = 'lost' AND kind = 'persistent';

CREATE TABLE executions (
    id                TEXT    NOT NULL PRIMARY KEY,
    sandbox_id        TEXT    NOT NULL REFERENCES sandboxes (id),
    command_json      TEXT    NOT NULL,
    started_at_ms     INTEGER NOT NULL,
    duration_ms       REAL    NOT NULL,
    exit_code         INTEGER,
    signal            INTEGER,
    timed_out         INTEGER NOT NULL CHECK (timed_out IN (0, 1)),
    oom_killed        INTEGER NOT NULL CHECK (oom_killed IN (0, 1)),
    cpu_ms            REAL    NOT NULL,
    peak_memory_bytes INTEGER NOT NULL CHECK (peak_memory_bytes >= 0),
    stdout_bytes      INTEGER NOT NULL CHECK (stdout_bytes >= 0),
    stderr_bytes      INTEGER NOT NULL CHECK (stderr_bytes >= 0),
    stdout_truncated  INTEGER NOT NULL CHECK (stdout_truncated IN (0, 1)),
    stderr_truncated  INTEGER NOT NULL CHECK (stderr_truncated IN (0, 1)),
    error             TEXT
) STRICT;

-- list_executions(sandbox_id): newest first. Also serves the foreign key.
CREATE INDEX executions_by_sandbox ON executions (sandbox_id, started_at_ms);

CREATE TRIGGER executions_count_insert AFTER INSERT ON executions
BEGIN
    UPDATE sandboxes SET exec_count = exec_count + 1 WHERE id = NEW.sandbox_id;
END;

CREATE TRIGGER executions_count_delete AFTER DELETE ON executions
BEGIN
    UPDATE sandboxes SET exec_count = exec_count - 1 WHERE id = OLD.sandbox_id;
END;
