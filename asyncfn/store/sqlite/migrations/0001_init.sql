-- 0001: functions, code, tasks with their events, attempts and logs.
-- Applied migrations are never edited: change the schema in a new numbered file.
-- Times are POSIX seconds (REAL, UTC); JSON columns hold orjson text.

CREATE TABLE code_bundles (
    sha256 TEXT PRIMARY KEY,
    data BLOB NOT NULL,
    size INTEGER NOT NULL,
    created_at REAL NOT NULL
);

CREATE TABLE functions (
    tenant TEXT NOT NULL,
    name TEXT NOT NULL,
    config TEXT NOT NULL,          -- JSON: FunctionSpec.to_config() without the columns below
    code_sha256 TEXT REFERENCES code_bundles (sha256),
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (tenant, name)
);

CREATE TABLE tasks (
    row INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    tenant TEXT NOT NULL,
    function TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN (
        'Enqueued', 'Running', 'Retrying', 'Suspended', 'Stopping',
        'Succeeded', 'Failed', 'Stopped', 'Expired', 'Invalid')),
    attempt INTEGER NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    max_attempts INTEGER NOT NULL CHECK (max_attempts >= 1),
    priority INTEGER NOT NULL DEFAULT 0,
    payload BLOB NOT NULL,
    created_at REAL NOT NULL,
    run_at REAL NOT NULL,
    started_at REAL,               -- start of the latest attempt
    finished_at REAL,
    result TEXT,                   -- JSON
    error TEXT,                    -- JSON {"type", "message", "traceback"}
    progress TEXT,                 -- JSON {"fraction", "message"}
    checkpoint TEXT,               -- JSON
    instance_id TEXT,
    node TEXT,
    lease_expires_at REAL,
    CHECK ((finished_at IS NOT NULL) =
           (status IN ('Succeeded', 'Failed', 'Stopped', 'Expired', 'Invalid')))
);

-- De-duplication: a task id is used once per tenant.
CREATE UNIQUE INDEX tasks_tenant_id ON tasks (tenant, id);
-- Dispatch: the due Enqueued tasks of a function, highest priority then oldest first.
CREATE INDEX tasks_dispatch ON tasks (tenant, function, priority DESC, run_at, row)
    WHERE status = 'Enqueued';
-- Promotion of Retrying tasks whose backoff ended.
CREATE INDEX tasks_retry ON tasks (run_at) WHERE status = 'Retrying';
-- Lost tasks: expired leases, and the running tasks of a restarted node.
CREATE INDEX tasks_lease ON tasks (lease_expires_at) WHERE status = 'Running';
CREATE INDEX tasks_node ON tasks (node) WHERE status = 'Running';
-- Listing, newest first, per tenant and per function (also counting and deletion).
CREATE INDEX tasks_list ON tasks (tenant, row DESC);
CREATE INDEX tasks_list_function ON tasks (tenant, function, row DESC);

CREATE TABLE task_events (
    row INTEGER NOT NULL REFERENCES tasks (row) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    at REAL NOT NULL,
    status TEXT NOT NULL,
    detail TEXT,                   -- JSON
    PRIMARY KEY (row, seq)
) WITHOUT ROWID;

CREATE TABLE attempts (
    row INTEGER NOT NULL REFERENCES tasks (row) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL,
    instance_id TEXT,
    node TEXT,
    outcome TEXT,                  -- the status the attempt led to
    error TEXT,                    -- JSON
    cpu_ms REAL,
    max_rss_mb REAL,
    PRIMARY KEY (row, number)
) WITHOUT ROWID;

CREATE TABLE task_logs (
    row INTEGER NOT NULL REFERENCES tasks (row) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    at REAL NOT NULL,
    stream TEXT NOT NULL,
    line TEXT NOT NULL,
    PRIMARY KEY (row, seq)
) WITHOUT ROWID;
