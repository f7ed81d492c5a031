-- 0003: flow control. The tasks holding an attempt, counted per function and per tenant for
-- the running caps; tenants' quotas; and the functions' dispatch-rate buckets.
-- Applied migrations are never edited: change the schema in a new numbered file.

-- Running caps: a claim under a cap counts the tasks holding an attempt (Running, Stopping,
-- Suspended while running: exactly those with a lease) of its function, or of its tenant.
CREATE INDEX tasks_running ON tasks (tenant, function, status) WHERE lease_expires_at IS NOT NULL;

-- A tenant's quotas; NULL: unlimited.
ALTER TABLE tenants
    ADD COLUMN max_running integer CHECK (max_running IS NULL OR max_running >= 0),
    ADD COLUMN submit_rate double precision CHECK (submit_rate IS NULL OR submit_rate > 0),
    ADD COLUMN submit_burst integer CHECK (submit_burst IS NULL OR submit_burst >= 1);

-- A function's dispatch-rate token bucket: its tokens at updated_at (no row: a full bucket).
-- Claims under a rate read and write it holding the function's advisory lock (see flow.py).
CREATE TABLE flow_buckets (
    tenant text NOT NULL,
    function text NOT NULL,
    tokens double precision NOT NULL,
    updated_at double precision NOT NULL,
    PRIMARY KEY (tenant, function)
);
