-- The SQLite store's statements for concurrency keys (keys.py), by name; PostgreSQL's keys.sql
-- uses the same names. A keyed claim reads these in its own write (the one writer serializes
-- them). The first key's values are ckey1; tasks_keys is the partial index
-- (tenant, function, ckey1, priority DESC, run_at, row) WHERE status = 'Enqueued'.

-- name: key_values_first
-- The first waiting values of the first key, smallest first, up to :upto (NULL: no bound): a
-- skip scan, one seek per value.
WITH RECURSIVE v (value, n) AS (
    SELECT (SELECT min(ckey1) FROM tasks
            WHERE tenant = :tenant AND function = :function AND status = 'Enqueued'
              AND ckey1 IS NOT NULL), 1
    UNION ALL
    SELECT (SELECT min(ckey1) FROM tasks
            WHERE tenant = :tenant AND function = :function AND status = 'Enqueued'
              AND ckey1 > v.value), v.n + 1
    FROM v WHERE v.value IS NOT NULL AND v.n < :limit AND (:upto IS NULL OR v.value < :upto)
)
SELECT value FROM v WHERE value IS NOT NULL AND (:upto IS NULL OR value <= :upto);

-- name: key_values_after
-- The waiting values of the first key after :after, smallest first (the same skip scan).
WITH RECURSIVE v (value, n) AS (
    SELECT (SELECT min(ckey1) FROM tasks
            WHERE tenant = :tenant AND function = :function AND status = 'Enqueued'
              AND ckey1 > :after), 1
    UNION ALL
    SELECT (SELECT min(ckey1) FROM tasks
            WHERE tenant = :tenant AND function = :function AND status = 'Enqueued'
              AND ckey1 > v.value), v.n + 1
    FROM v WHERE v.value IS NOT NULL AND v.n < :limit
)
SELECT value FROM v WHERE value IS NOT NULL;

-- name: key_candidates
-- The first :limit due tasks of one value in dispatch order (a seek of tasks_keys; SQLite runs
-- it once per value, a statement without a round trip). Tasks created before :created_after
-- are past their max event age and left for expire_tasks.
SELECT ckey1, row, id, ckey2, ckey3, priority, run_at FROM tasks
WHERE tenant = :tenant AND function = :function AND status = 'Enqueued' AND ckey1 = :value
  AND run_at <= :now AND created_at >= :created_after
ORDER BY priority DESC, run_at, row
LIMIT :limit;

-- name: key_candidates_unkeyed
-- Due tasks without a first key value (submitted before the function had its limits).
SELECT ckey1, row, id, ckey2, ckey3, priority, run_at FROM tasks
WHERE tenant = :tenant AND function = :function AND status = 'Enqueued' AND ckey1 IS NULL
  AND run_at <= :now AND created_at >= :created_after
ORDER BY priority DESC, run_at, row
LIMIT :limit;

-- name: running_keyed
-- The function's tasks holding an attempt (as count_running_function counts them), with keys.
SELECT row, id, ckey1, ckey2, ckey3, started_at, status FROM tasks
WHERE tenant = :tenant AND function = :function AND lease_expires_at IS NOT NULL
  AND status IN ('Running', 'Stopping', 'Suspended');

-- name: get_key_cursor
SELECT value FROM key_cursors WHERE tenant = :tenant AND function = :function;

-- name: put_key_cursor
INSERT INTO key_cursors (tenant, function, value) VALUES (:tenant, :function, :value)
ON CONFLICT (tenant, function) DO UPDATE SET value = excluded.value;

-- name: claim_rows
-- The planned tasks → Running with a new attempt (:rows is a JSON list of task rows); a task
-- no longer Enqueued is left alone. RETURNING as claim_ready's, in no particular order.
UPDATE tasks SET
    status = 'Running', attempt = attempt + 1, started_at = :now, node = :node,
    lease_expires_at = :lease_until, instance_id = NULL
WHERE row IN (SELECT value FROM json_each(:rows)) AND status = 'Enqueued'
RETURNING row, id, tenant, function, attempt, max_attempts, payload, created_at, started_at,
          checkpoint, priority, run_at, attributes;

-- name: key_waiting
-- Waiting tasks per value of key :column (1-3), over at most :scan of the function's queue.
SELECT value, count(*) FROM (
    SELECT CASE :column WHEN 1 THEN ckey1 WHEN 2 THEN ckey2 ELSE ckey3 END AS value
    FROM tasks WHERE tenant = :tenant AND function = :function AND status = 'Enqueued'
    LIMIT :scan)
WHERE value IS NOT NULL
GROUP BY value;

-- name: task_keys
-- A task's key values, in store.taskkeys.KEY_COLUMNS order.
SELECT ckey1, ckey2, ckey3, debounce_key, throttle_key FROM tasks WHERE row = :row;
