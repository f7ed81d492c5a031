-- 0002: task control (stop, suspend, resume, rerun), expiry, retention and paused functions.
-- Applied migrations are never edited: change the schema in a new numbered file.

-- A paused function's tasks are accepted but not dispatched. The column is the truth: a config
-- put leaves it alone.
ALTER TABLE functions ADD COLUMN paused INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1));

-- A rerun's original task id (same tenant). No foreign key: retention may delete the original.
ALTER TABLE tasks ADD COLUMN rerun_of TEXT;

-- Expiry: the waiting tasks of a function, oldest first.
CREATE INDEX tasks_expiry ON tasks (tenant, function, created_at)
    WHERE status IN ('Enqueued', 'Retrying');
-- Retention: terminal tasks by when they finished (finished_at is set exactly when terminal).
CREATE INDEX tasks_finished ON tasks (finished_at) WHERE finished_at IS NOT NULL;

-- Lost tasks: a lease is now held by Running, Stopping and Suspended-while-running tasks, and
-- lease_expires_at is set exactly while one is held; the 0001 indexes covered Running only.
DROP INDEX tasks_lease;
DROP INDEX tasks_node;
CREATE INDEX tasks_lease_held ON tasks (lease_expires_at) WHERE lease_expires_at IS NOT NULL;
CREATE INDEX tasks_node_held ON tasks (node) WHERE lease_expires_at IS NOT NULL;
