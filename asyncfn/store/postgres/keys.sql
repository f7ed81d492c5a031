-- The PostgreSQL store's statements for concurrency keys (keys.py), with the names of SQLite's
-- keys.sql. A keyed claim runs them in its transaction, after the function's advisory lock
-- (flow.py). tasks_keys is the partial index
-- (tenant, function, ckey1, priority DESC, run_at, row) WHERE status = 'Enqueued'.

-- name: key_values_first
-- The first waiting values of the first key, in index order, up to %(upto)s (NULL: no bound):
-- a skip scan, one index seek per value.
WITH RECURSIVE v (value, n) AS (
    SELECT (SELECT ckey1 FROM tasks
            WHERE tenant = %(tenant)s AND function = %(function)s AND status = 'Enqueued'
              AND ckey1 IS NOT NULL
            ORDER BY ckey1 LIMIT 1), 1
    UNION ALL
    SELECT (SELECT ckey1 FROM tasks
            WHERE tenant = %(tenant)s AND function = %(function)s AND status = 'Enqueued'
              AND ckey1 > v.value
            ORDER BY ckey1 LIMIT 1), v.n + 1
    FROM v
    WHERE v.value IS NOT NULL AND v.n < %(limit)s
      AND (%(upto)s::text IS NULL OR v.value < %(upto)s::text)
)
SELECT value FROM v
WHERE value IS NOT NULL AND (%(upto)s::text IS NULL OR value <= %(upto)s::text);

-- name: key_values_after
-- The waiting values of the first key after %(after)s, in index order (the same skip scan).
WITH RECURSIVE v (value, n) AS (
    SELECT (SELECT ckey1 FROM tasks
            WHERE tenant = %(tenant)s AND function = %(function)s AND status = 'Enqueued'
              AND ckey1 > %(after)s::text
            ORDER BY ckey1 LIMIT 1), 1
    UNION ALL
    SELECT (SELECT ckey1 FROM tasks
            WHERE tenant = %(tenant)s AND function = %(function)s AND status = 'Enqueued'
              AND ckey1 > v.value
            ORDER BY ckey1 LIMIT 1), v.n + 1
    FROM v WHERE v.value IS NOT NULL AND v.n < %(limit)s
)
SELECT value FROM v WHERE value IS NOT NULL;

-- name: key_candidates
-- Per value of %(values)s, its first %(sizes)s due tasks in dispatch order (a lateral seek of
-- tasks_keys each). Tasks past their max event age are left for expire_tasks.
SELECT p.value, t.row, t.id, t.ckey2, t.ckey3, t.priority, t.run_at
FROM unnest(%(values)s::text[], %(sizes)s::integer[]) AS p (value, size)
CROSS JOIN LATERAL (
    SELECT row, id, ckey2, ckey3, priority, run_at FROM tasks
    WHERE tenant = %(tenant)s AND function = %(function)s AND status = 'Enqueued'
      AND ckey1 = p.value AND run_at <= %(now)s AND created_at >= %(created_after)s
    ORDER BY priority DESC, run_at, row
    LIMIT p.size) t;

-- name: key_candidates_unkeyed
-- Due tasks without a first key value (submitted before the function had its limits).
SELECT ckey1, row, id, ckey2, ckey3, priority, run_at FROM tasks
WHERE tenant = %(tenant)s AND function = %(function)s AND status = 'Enqueued' AND ckey1 IS NULL
  AND run_at <= %(now)s AND created_at >= %(created_after)s
ORDER BY priority DESC, run_at, row
LIMIT %(limit)s;

-- name: running_keyed
-- The function's tasks holding an attempt (as count_running_function counts them), with keys.
SELECT row, id, ckey1, ckey2, ckey3, started_at, status FROM tasks
WHERE tenant = %(tenant)s AND function = %(function)s AND lease_expires_at IS NOT NULL
  AND status IN ('Running', 'Stopping', 'Suspended');

-- name: get_key_cursor
SELECT value FROM key_cursors WHERE tenant = %(tenant)s AND function = %(function)s;

-- name: put_key_cursor
INSERT INTO key_cursors (tenant, function, value) VALUES (%(tenant)s, %(function)s, %(value)s)
ON CONFLICT (tenant, function) DO UPDATE SET value = excluded.value;

-- name: claim_rows
-- The planned tasks (%(rows)s) → Running with a new attempt, its row and its event; a task no
-- longer Enqueued (a stop took it meanwhile) is left alone. Columns as claim_ready's.
WITH claimed AS (
    UPDATE tasks t SET
        status = 'Running', attempt = t.attempt + 1, started_at = %(now)s, node = %(node)s,
        lease_expires_at = %(lease_until)s, instance_id = NULL
    WHERE t.row = ANY (%(rows)s::bigint[]) AND t.status = 'Enqueued'
    RETURNING t.row, t.id, t.tenant, t.function, t.attempt, t.max_attempts, t.payload,
              t.created_at, t.started_at, t.checkpoint, t.priority, t.run_at, t.attributes
), events AS (
    INSERT INTO task_events (row, seq, at, status, detail)
    SELECT c.row, (SELECT coalesce(max(seq), 0) FROM task_events e WHERE e.row = c.row) + 1,
           %(now)s, 'Running',
           jsonb_build_object('attempt', c.attempt, 'node', %(node)s::text)::text
    FROM claimed c
), attempts AS (
    INSERT INTO attempts (row, number, started_at, node)
    SELECT c.row, c.attempt, %(now)s, %(node)s::text FROM claimed c
)
SELECT * FROM claimed;

-- name: key_waiting
-- Waiting tasks per value of key %(column)s (1-3), over at most %(scan)s of the queue.
SELECT value, count(*) FROM (
    SELECT CASE %(column)s::integer WHEN 1 THEN ckey1 WHEN 2 THEN ckey2 ELSE ckey3 END AS value
    FROM tasks WHERE tenant = %(tenant)s AND function = %(function)s AND status = 'Enqueued'
    LIMIT %(scan)s) s
WHERE value IS NOT NULL
GROUP BY value;

-- name: task_keys
-- A task's key values, in store.taskkeys.KEY_COLUMNS order.
SELECT ckey1, ckey2, ckey3, debounce_key, throttle_key FROM tasks WHERE row = %(row)s;
