-- 0010: bulk operations (stop, rerun, purge over a filter), tracked with their progress.
-- Applied migrations are never edited: change the schema in a new numbered file.

CREATE TABLE operations (
    id text PRIMARY KEY,
    tenant text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('stop', 'rerun', 'purge')),
    filter text NOT NULL,
    status text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    total bigint NOT NULL,
    done bigint NOT NULL DEFAULT 0,
    skipped bigint NOT NULL DEFAULT 0,
    cursor bigint,
    error text,
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    finished_at double precision
);
CREATE INDEX operations_tenant ON operations (tenant, created_at DESC);
CREATE INDEX operations_running ON operations (created_at) WHERE status = 'running';
-- The walk's bound (the newest task row when the operation was created) and its runner: the
-- node that owns it while lease_until lasts (another node takes over after).
ALTER TABLE operations ADD COLUMN max_row bigint NOT NULL DEFAULT 0;
ALTER TABLE operations ADD COLUMN owner text;
ALTER TABLE operations ADD COLUMN lease_until double precision;
