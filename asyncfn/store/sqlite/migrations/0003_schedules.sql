-- 0003: schedules (timer triggers): a cron expression or a fixed interval that submits a task.
-- Applied migrations are never edited: change the schema in a new numbered file.

-- next_fire_at is the earliest tick not yet fired or skipped (POSIX seconds); NULL while the
-- schedule is disabled. Exactly one of cron and every_s is set.
CREATE TABLE schedules (
    tenant TEXT NOT NULL,
    name TEXT NOT NULL,
    function TEXT NOT NULL,
    cron TEXT,
    every_s INTEGER CHECK (every_s IS NULL OR every_s >= 1),
    timezone TEXT NOT NULL,
    payload BLOB NOT NULL,
    enabled INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    catch_up TEXT NOT NULL CHECK (catch_up IN ('none', 'latest', 'all')),
    last_fire_at REAL,
    next_fire_at REAL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (tenant, name),
    CHECK ((cron IS NULL) <> (every_s IS NULL))
);

-- The runner's question: which enabled schedules are due, earliest first.
CREATE INDEX schedules_due ON schedules (next_fire_at) WHERE enabled = 1;
