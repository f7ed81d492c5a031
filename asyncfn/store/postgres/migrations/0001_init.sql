-- 0001: the whole schema, equivalent to SQLite's 0001–0006 together: functions, code, tasks
-- with their events, attempts and logs, the destination outbox, schedules and triggers.
-- Applied migrations are never edited: change the schema in a new numbered file.
-- Times are POSIX seconds (double precision, UTC); JSON columns hold orjson text.

CREATE TABLE code_bundles (
    sha256 text PRIMARY KEY,
    data bytea NOT NULL,
    size bigint NOT NULL,
    created_at double precision NOT NULL
);

CREATE TABLE functions (
    tenant text NOT NULL,
    name text NOT NULL,
    config text NOT NULL,          -- JSON: FunctionSpec.to_config() without the columns below
    code_sha256 text REFERENCES code_bundles (sha256),
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    -- A paused function's tasks are accepted but not dispatched; a config put leaves it alone.
    paused boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant, name)
);

CREATE TABLE tasks (
    row bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id text NOT NULL,
    tenant text NOT NULL,
    function text NOT NULL,
    status text NOT NULL CHECK (status IN (
        'Enqueued', 'Running', 'Retrying', 'Suspended', 'Stopping',
        'Succeeded', 'Failed', 'Stopped', 'Expired', 'Invalid')),
    attempt integer NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    max_attempts integer NOT NULL CHECK (max_attempts >= 1),
    priority integer NOT NULL DEFAULT 0,
    payload bytea NOT NULL,
    created_at double precision NOT NULL,
    run_at double precision NOT NULL,
    started_at double precision,   -- start of the latest attempt
    finished_at double precision,
    result text,                   -- JSON
    error text,                    -- JSON {"type", "message", "traceback"}
    progress text,                 -- JSON {"fraction", "message"}
    checkpoint text,               -- JSON
    instance_id text,
    node text,
    lease_expires_at double precision,
    rerun_of text,                 -- a rerun's original task id (no foreign key: retention)
    CHECK ((finished_at IS NOT NULL) =
           (status IN ('Succeeded', 'Failed', 'Stopped', 'Expired', 'Invalid')))
);

-- De-duplication: a task id is used once per tenant (ON CONFLICT (tenant, id) DO NOTHING).
CREATE UNIQUE INDEX tasks_tenant_id ON tasks (tenant, id);
-- Dispatch: the due Enqueued tasks of a function, highest priority then oldest first.
CREATE INDEX tasks_dispatch ON tasks (tenant, function, priority DESC, run_at, row)
    WHERE status = 'Enqueued';
-- Promotion of Retrying tasks whose backoff ended.
CREATE INDEX tasks_retry ON tasks (run_at, row) WHERE status = 'Retrying';
-- Lost tasks: lease_expires_at is set exactly while a lease is held.
CREATE INDEX tasks_lease_held ON tasks (lease_expires_at) WHERE lease_expires_at IS NOT NULL;
CREATE INDEX tasks_node_held ON tasks (node) WHERE lease_expires_at IS NOT NULL;
-- Listing, newest first, per tenant and per function (also counting and deletion).
CREATE INDEX tasks_list ON tasks (tenant, row DESC);
CREATE INDEX tasks_list_function ON tasks (tenant, function, row DESC);
-- Expiry and queue depth: the waiting tasks of a function, oldest first.
CREATE INDEX tasks_expiry ON tasks (tenant, function, created_at)
    WHERE status IN ('Enqueued', 'Retrying');
-- Retention: terminal tasks by when they finished.
CREATE INDEX tasks_finished ON tasks (finished_at) WHERE finished_at IS NOT NULL;

CREATE TABLE task_events (
    row bigint NOT NULL REFERENCES tasks (row) ON DELETE CASCADE,
    seq integer NOT NULL,
    at double precision NOT NULL,
    status text NOT NULL,
    detail text,                   -- JSON
    PRIMARY KEY (row, seq)
);

CREATE TABLE attempts (
    row bigint NOT NULL REFERENCES tasks (row) ON DELETE CASCADE,
    number integer NOT NULL,
    started_at double precision NOT NULL,
    finished_at double precision,
    instance_id text,
    node text,
    outcome text,                  -- the status the attempt led to
    error text,                    -- JSON
    cpu_ms double precision,
    max_rss_mb double precision,
    instance_started_at double precision,  -- when the instance actually began the attempt
    PRIMARY KEY (row, number)
);

CREATE TABLE task_logs (
    row bigint NOT NULL REFERENCES tasks (row) ON DELETE CASCADE,
    seq integer NOT NULL,
    at double precision NOT NULL,
    stream text NOT NULL,
    line text NOT NULL,
    PRIMARY KEY (row, seq)
);

-- The destination outbox: every terminal transition inserts the deliveries its function's
-- async.on_success / async.on_failure ask for, in the same transaction.
CREATE TABLE deliveries (
    id text PRIMARY KEY,           -- stable across retries: X-Asyncfn-Delivery, chained dedup id
    row bigint NOT NULL REFERENCES tasks (row) ON DELETE CASCADE,
    tenant text NOT NULL,
    task_id text NOT NULL,
    function text NOT NULL,
    destination text NOT NULL,     -- JSON: Destination.to_config() (secret included)
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_at double precision NOT NULL,
    lease_expires_at double precision,
    node text,                     -- who holds (or last held) the lease
    last_error text,
    created_at double precision NOT NULL,
    delivered_at double precision,
    CHECK ((delivered_at IS NOT NULL) = (status = 'delivered'))
);

CREATE INDEX deliveries_due ON deliveries (next_at) WHERE status = 'pending';
CREATE INDEX deliveries_row ON deliveries (row);

-- Schedules (timer triggers): next_fire_at is the earliest tick not yet fired or skipped;
-- NULL while the schedule is disabled. Exactly one of cron and every_s is set.
CREATE TABLE schedules (
    tenant text NOT NULL,
    name text NOT NULL,
    function text NOT NULL,
    cron text,
    every_s bigint CHECK (every_s IS NULL OR every_s >= 1),
    timezone text NOT NULL,
    payload bytea NOT NULL,
    enabled boolean NOT NULL,
    catch_up text NOT NULL CHECK (catch_up IN ('none', 'latest', 'all')),
    last_fire_at double precision,
    next_fire_at double precision,
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    PRIMARY KEY (tenant, name),
    CHECK ((cron IS NULL) <> (every_s IS NULL))
);

CREATE INDEX schedules_due ON schedules (next_fire_at) WHERE enabled;

-- Triggers (event sources): settings is the source type's own JSON object.
CREATE TABLE triggers (
    tenant text NOT NULL,
    name text NOT NULL,
    function text NOT NULL,
    type text NOT NULL,
    settings text NOT NULL,
    enabled boolean NOT NULL,
    max_queue_depth integer NOT NULL CHECK (max_queue_depth >= 1),
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    PRIMARY KEY (tenant, name)
);
