-- 0013: concurrency keys. A task's key values, one per limit of its function's `concurrency`
-- (TaskKeys.concurrency, in order); NULL where the function has no such limit.
-- Applied migrations are never edited: change the schema in a new numbered file.

ALTER TABLE tasks ADD COLUMN ckey1 TEXT;
ALTER TABLE tasks ADD COLUMN ckey2 TEXT;
ALTER TABLE tasks ADD COLUMN ckey3 TEXT;

-- A keyed claim's skip scan: the waiting values of the first key (one seek each), then each
-- value's due tasks in dispatch order.
CREATE INDEX tasks_keys ON tasks (tenant, function, ckey1, priority DESC, run_at, row)
    WHERE status = 'Enqueued';

-- Per function, the first key's value a claim served last: the next claim starts after it.
CREATE TABLE key_cursors (
    tenant TEXT NOT NULL,
    function TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (tenant, function)
) WITHOUT ROWID;
