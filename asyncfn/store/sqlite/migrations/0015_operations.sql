-- 0015: bulk operations (stop, rerun, purge over a filter), tracked with their progress.
-- Applied migrations are never edited: change the schema in a new numbered file.

CREATE TABLE operations (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('stop', 'rerun', 'purge')),
    filter TEXT NOT NULL,          -- JSON: the task filter as given
    status TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    total INTEGER NOT NULL,        -- matching tasks when the operation was created
    done INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0,
    cursor INTEGER,                -- the last task row handled
    error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    finished_at REAL
);
CREATE INDEX operations_tenant ON operations (tenant, created_at DESC);
CREATE INDEX operations_running ON operations (created_at) WHERE status = 'running';
-- The walk's bound (the newest task row when the operation was created) and its runner: the
-- node that owns it while lease_until lasts (another node takes over after).
ALTER TABLE operations ADD COLUMN max_row INTEGER NOT NULL DEFAULT 0;
ALTER TABLE operations ADD COLUMN owner TEXT;
ALTER TABLE operations ADD COLUMN lease_until REAL;
