-- The PostgreSQL store's statements, by name (asyncfn.store.sql loads them).
-- The names match SQLite's queries.sql wherever a statement exists in both; here a statement
-- often does a whole transition (CTEs: the guarded update, its event, its attempt row), and
-- batches arrive as arrays (unnest). Parameters are psycopg's %(named)s; a parameter that may
-- be NULL carries a cast, so the server can type it.
-- A task row is read as the 20 columns of `get_task`, in that order (rows.task_from_row);
-- a function as the 7 columns of `get_function` (rows.function_from_row).
-- Every transition that locks rows first takes them in one statement (FOR UPDATE SKIP LOCKED
-- for claims), and event numbers are read after the task row is locked, so they never clash.

-- functions and code -------------------------------------------------------------------------

-- name: function_exists
SELECT 1 FROM functions WHERE tenant = %(tenant)s AND name = %(name)s FOR UPDATE;

-- name: upsert_function
-- A new config replaces the old; the code hash is kept unless the spec carries one; `paused`
-- is left alone (set_function_paused owns it). Answers whether the row was created.
INSERT INTO functions (tenant, name, config, code_sha256, created_at, updated_at)
VALUES (%(tenant)s, %(name)s, %(config)s, %(code_sha256)s::text, %(created_at)s, %(updated_at)s)
ON CONFLICT (tenant, name) DO UPDATE SET
    config = excluded.config,
    code_sha256 = coalesce(excluded.code_sha256, functions.code_sha256),
    updated_at = excluded.updated_at
RETURNING (xmax = 0) AS created;

-- name: get_function
SELECT tenant, name, config, code_sha256, created_at, updated_at, paused
FROM functions WHERE tenant = %(tenant)s AND name = %(name)s;

-- name: list_functions
SELECT tenant, name, config, code_sha256, created_at, updated_at, paused
FROM functions WHERE %(tenant)s::text IS NULL OR tenant = %(tenant)s::text
ORDER BY tenant, name;

-- name: delete_function
DELETE FROM functions WHERE tenant = %(tenant)s AND name = %(name)s RETURNING name;

-- name: invalidate_waiting_tasks
-- With their events; answers the outbox sources (as outbox_sources) of the invalidated tasks.
WITH invalid AS (
    UPDATE tasks SET status = 'Invalid', finished_at = %(now)s, lease_expires_at = NULL
    WHERE tenant = %(tenant)s AND function = %(function)s
      AND status IN ('Enqueued', 'Retrying', 'Suspended')
    RETURNING row, tenant, id, function
), events AS (
    INSERT INTO task_events (row, seq, at, status, detail)
    SELECT v.row, (SELECT coalesce(max(seq), 0) FROM task_events e WHERE e.row = v.row) + 1,
           %(now)s, 'Invalid', %(detail)s::text
    FROM invalid v
)
SELECT v.row, v.tenant, v.id, v.function,
       f.tenant, f.name, f.config, f.code_sha256, f.created_at, f.updated_at, f.paused
FROM invalid v LEFT JOIN functions f ON f.tenant = v.tenant AND f.name = v.function
ORDER BY v.row;

-- name: set_function_code
UPDATE functions SET code_sha256 = %(sha256)s, updated_at = %(now)s
WHERE tenant = %(tenant)s AND name = %(name)s
RETURNING tenant, name, config, code_sha256, created_at, updated_at, paused;

-- name: set_function_paused
UPDATE functions SET paused = %(paused)s, updated_at = %(now)s
WHERE tenant = %(tenant)s AND name = %(name)s
RETURNING tenant, name, config, code_sha256, created_at, updated_at, paused;

-- name: insert_code
INSERT INTO code_bundles (sha256, data, size, created_at)
VALUES (%(sha256)s, %(data)s, %(size)s, %(now)s)
ON CONFLICT (sha256) DO NOTHING;

-- name: get_code
SELECT data FROM code_bundles WHERE sha256 = %(sha256)s;

-- transitions --------------------------------------------------------------------------------

-- name: insert_task
-- A batch of new tasks with their first events. A taken (tenant, id) inserts nothing and
-- answers the existing task (created false); a row a concurrent transaction committed after
-- this statement began comes back with a NULL row (the caller looks it up again). Wakes the
-- function's dispatchers (on commit) when a new task is due now.
WITH input AS (
    SELECT * FROM unnest(%(ids)s::text[], %(priorities)s::integer[], %(payloads)s::bytea[],
                         %(run_ats)s::float8[], %(details)s::text[], %(attributes)s::text[],
                         %(ckey1)s::text[], %(ckey2)s::text[], %(ckey3)s::text[],
                         %(debounce_key)s::text[], %(throttle_key)s::text[])
        WITH ORDINALITY AS i (id, priority, payload, run_at, detail, attributes, ckey1, ckey2,
                              ckey3, debounce_key, throttle_key, ord)
), inserted AS (
    INSERT INTO tasks (id, tenant, function, status, attempt, max_attempts, priority, payload,
                       created_at, run_at, attributes, ckey1, ckey2, ckey3, debounce_key,
                       throttle_key)
    SELECT id, %(tenant)s::text, %(function)s::text, 'Enqueued', 0, %(max_attempts)s, priority,
           payload, %(now)s, run_at, attributes, ckey1, ckey2, ckey3, debounce_key,
           throttle_key
    FROM input ORDER BY ord
    ON CONFLICT (tenant, id) DO NOTHING
    RETURNING row, id, run_at
), events AS (
    INSERT INTO task_events (row, seq, at, status, detail)
    SELECT n.row, 1, %(now)s, 'Enqueued', i.detail FROM inserted n JOIN input i ON i.id = n.id
), notified AS (
    SELECT count(pg_notify('asyncfn_ready', %(tenant)s::text || '/' || %(function)s::text)) AS n
    FROM (SELECT 1 FROM inserted WHERE run_at <= %(now)s LIMIT 1) AS due
)
SELECT i.id, coalesce(n.row, t.row), n.row IS NOT NULL, coalesce(t.status, 'Enqueued')
FROM input i
    LEFT JOIN inserted n ON n.id = i.id
    LEFT JOIN LATERAL (  -- an index lookup per id not inserted, whatever the plan's estimates
        SELECT row, status FROM tasks
        WHERE n.row IS NULL AND tenant = %(tenant)s::text AND id = i.id
    ) AS t ON true
    CROSS JOIN notified
ORDER BY i.ord;

-- name: task_row_status
SELECT row, status FROM tasks WHERE tenant = %(tenant)s AND id = %(id)s;

-- shaping: debounce and throttle at submission (shaping.py) ------------------------------------

-- name: lock_debounce_keys
-- Serializes submissions of the same debounce keys (:keys, sorted) until the transaction ends,
-- across nodes, so exactly one task of a key stays waiting.
SELECT count(pg_advisory_xact_lock(hashtextextended(
           %(tenant)s::text || '/' || %(function)s::text || '/' || k, 7305)))
FROM unnest(%(keys)s::text[]) WITH ORDINALITY AS u (k, ord);

-- name: debounce_pending
-- The waiting tasks of the debounce keys :keys: Enqueued, never attempted, not claimed; what a
-- new submission with the same key supersedes. Locked: a claim skips them from now on.
SELECT debounce_key, row, id, coalesce(debounce_first_at, created_at), run_at FROM tasks
WHERE tenant = %(tenant)s AND function = %(function)s AND status = 'Enqueued'
  AND debounce_key = ANY (%(keys)s::text[])
  AND attempt = 0 AND lease_expires_at IS NULL
ORDER BY row
FOR UPDATE;

-- name: set_debounce_first_at
UPDATE tasks t SET debounce_first_at = u.first_at
FROM unnest(%(rows)s::bigint[], %(first_ats)s::float8[]) AS u (row, first_at)
WHERE t.row = u.row;

-- name: throttle_tats
-- The throttle keys' rows, created at :now when missing, locked until the transaction ends so
-- nodes share one rate (keys sorted, so two batches lock them in the same order).
INSERT INTO throttle_state (tenant, function, key, tat)
SELECT %(tenant)s, %(function)s, k, %(now)s FROM unnest(%(keys)s::text[]) AS u (k)
ORDER BY k
ON CONFLICT (tenant, function, key) DO UPDATE SET tat = throttle_state.tat
RETURNING key, tat;

-- name: save_throttle_tat
UPDATE throttle_state s SET tat = u.tat
FROM unnest(%(keys)s::text[], %(tats)s::float8[]) AS u (key, tat)
WHERE s.tenant = %(tenant)s AND s.function = %(function)s AND s.key = u.key;


-- name: tasks_row_status
SELECT id, row, status FROM tasks WHERE tenant = %(tenant)s AND id = ANY (%(ids)s::text[]);

-- name: insert_first_event
INSERT INTO task_events (row, seq, at, status, detail)
VALUES (%(row)s, 1, %(at)s, %(status)s, %(detail)s::text);

-- name: insert_event
-- Events of a task are numbered 1, 2, 3… in the order they happened (the caller holds the
-- task rows locked). A batch: parallel arrays, in order.
INSERT INTO task_events (row, seq, at, status, detail)
SELECT e.row,
       (SELECT coalesce(max(seq), 0) FROM task_events p WHERE p.row = e.row)
           + row_number() OVER (PARTITION BY e.row ORDER BY e.ord),
       e.at, e.status, e.detail
FROM unnest(%(rows)s::bigint[], %(ats)s::float8[], %(statuses)s::text[], %(details)s::text[])
    WITH ORDINALITY AS e (row, at, status, detail, ord);

-- name: notify_ready
-- Wake the dispatchers of a function on every node, when the transaction commits.
SELECT pg_notify('asyncfn_ready', %(tenant)s::text || '/' || %(function)s::text);

-- name: notify_control
-- Tell the node running a task's attempt to signal it (:payload: a ControlSignal as JSON,
-- listen.py), when the transaction commits.
SELECT pg_notify('asyncfn_control', %(payload)s::text);

-- name: notify_catalog
-- Tell every node that a function changed (put, code, paused, deleted), when the transaction
-- commits: each reloads it from this table.
SELECT pg_notify('asyncfn_catalog', %(tenant)s::text || '/' || %(name)s::text);

-- name: claim_ready
-- The due Enqueued tasks of a function, highest priority then oldest first, → Running with a
-- new attempt, its row and its event. SKIP LOCKED: concurrent claimers take disjoint rows.
-- Tasks created before :created_after are past their max event age and left for expire_tasks.
WITH picked AS (
    SELECT row FROM tasks
    WHERE tenant = %(tenant)s AND function = %(function)s AND status = 'Enqueued'
      AND run_at <= %(now)s AND created_at >= %(created_after)s
    ORDER BY priority DESC, run_at, row
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE tasks t SET
        status = 'Running', attempt = t.attempt + 1, started_at = %(now)s, node = %(node)s,
        lease_expires_at = %(lease_until)s, instance_id = NULL
    FROM picked WHERE t.row = picked.row
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
SELECT * FROM claimed ORDER BY priority DESC, run_at, row;

-- name: finish_task
-- A batch of attempt endings (one item per task row): the guarded update, the attempt's close
-- and the event. Each item's :sources (comma-separated) are the statuses a task in an attempt
-- may reach its status from; a Suspended task is in an attempt only while it holds a lease.
-- Answers the outbox sources (as outbox_sources) of the tasks that ended.
WITH input AS (
    SELECT * FROM unnest(
        %(rows)s::bigint[], %(attempts)s::integer[], %(statuses)s::text[], %(sources)s::text[],
        %(ats)s::float8[], %(results)s::text[], %(errors)s::text[], %(instance_ids)s::text[],
        %(details)s::text[], %(cpu_ms)s::float8[], %(max_rss_mb)s::float8[],
        %(instance_started_ats)s::float8[])
    AS i (row, attempt, status, sources, at, result, error, instance_id, detail, cpu_ms,
          max_rss_mb, instance_started_at)
), ended AS (
    UPDATE tasks t SET
        status = i.status, finished_at = i.at, result = i.result, error = i.error,
        lease_expires_at = NULL, instance_id = coalesce(i.instance_id, t.instance_id)
    FROM input i
    WHERE t.row = i.row AND t.attempt = i.attempt
      AND t.status = ANY (string_to_array(i.sources, ','))
      AND (t.status <> 'Suspended' OR t.lease_expires_at IS NOT NULL)
    RETURNING t.row, t.tenant, t.id, t.function
), closed AS (
    UPDATE attempts a SET
        finished_at = i.at, outcome = i.status, error = i.error, cpu_ms = i.cpu_ms,
        max_rss_mb = i.max_rss_mb, instance_id = coalesce(i.instance_id, a.instance_id),
        instance_started_at = coalesce(i.instance_started_at, a.instance_started_at)
    FROM ended e JOIN input i ON i.row = e.row
    WHERE a.row = e.row AND a.number = i.attempt
), events AS (
    INSERT INTO task_events (row, seq, at, status, detail)
    SELECT e.row, (SELECT coalesce(max(seq), 0) FROM task_events p WHERE p.row = e.row) + 1,
           i.at, i.status, i.detail
    FROM ended e JOIN input i ON i.row = e.row
)
SELECT e.row, e.tenant, e.id, e.function,
       f.tenant, f.name, f.config, f.code_sha256, f.created_at, f.updated_at, f.paused
FROM ended e LEFT JOIN functions f ON f.tenant = e.tenant AND f.name = e.function;

-- name: retry_task
-- A batch of failed attempts → Retrying (one item per task row), as finish_task; answers the
-- rows that moved.
WITH input AS (
    SELECT * FROM unnest(
        %(rows)s::bigint[], %(attempts)s::integer[], %(sources)s::text[], %(ats)s::float8[],
        %(run_ats)s::float8[], %(errors)s::text[], %(instance_ids)s::text[], %(details)s::text[],
        %(cpu_ms)s::float8[], %(max_rss_mb)s::float8[], %(instance_started_ats)s::float8[])
    AS i (row, attempt, sources, at, run_at, error, instance_id, detail, cpu_ms, max_rss_mb,
          instance_started_at)
), retried AS (
    UPDATE tasks t SET
        status = 'Retrying', run_at = i.run_at, error = i.error, lease_expires_at = NULL,
        instance_id = coalesce(i.instance_id, t.instance_id)
    FROM input i
    WHERE t.row = i.row AND t.attempt = i.attempt
      AND t.status = ANY (string_to_array(i.sources, ','))
      AND (t.status <> 'Suspended' OR t.lease_expires_at IS NOT NULL)
    RETURNING t.row
), closed AS (
    UPDATE attempts a SET
        finished_at = i.at, outcome = 'Retrying', error = i.error, cpu_ms = i.cpu_ms,
        max_rss_mb = i.max_rss_mb, instance_id = coalesce(i.instance_id, a.instance_id),
        instance_started_at = coalesce(i.instance_started_at, a.instance_started_at)
    FROM retried r JOIN input i ON i.row = r.row
    WHERE a.row = r.row AND a.number = i.attempt
), events AS (
    INSERT INTO task_events (row, seq, at, status, detail)
    SELECT r.row, (SELECT coalesce(max(seq), 0) FROM task_events p WHERE p.row = r.row) + 1,
           i.at, 'Retrying', i.detail
    FROM retried r JOIN input i ON i.row = r.row
)
SELECT row FROM retried;

-- name: promote_due
-- Retrying tasks due by :now → Enqueued, with their events; wakes each function once.
WITH due AS (
    SELECT row FROM tasks WHERE status = 'Retrying' AND run_at <= %(now)s
    ORDER BY run_at, row LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), promoted AS (
    UPDATE tasks t SET status = 'Enqueued' FROM due WHERE t.row = due.row
    RETURNING t.row, t.tenant, t.function, t.run_at
), events AS (
    INSERT INTO task_events (row, seq, at, status, detail)
    SELECT p.row, (SELECT coalesce(max(seq), 0) FROM task_events e WHERE e.row = p.row) + 1,
           %(now)s, 'Enqueued', NULL
    FROM promoted p
), notified AS (
    SELECT count(pg_notify('asyncfn_ready', tenant || '/' || function)) AS n
    FROM (SELECT DISTINCT tenant, function FROM promoted) AS woken
)
SELECT p.row, p.tenant, p.function, p.run_at FROM promoted p CROSS JOIN notified
ORDER BY p.run_at, p.row;

-- name: renew_leases
-- The live attempts: Running, Stopping, and Suspended while running (those hold a lease; a
-- Suspended task without one is only held in the queue).
UPDATE tasks SET lease_expires_at = %(until)s
WHERE row = ANY (%(rows)s::bigint[])
  AND node = %(node)s AND lease_expires_at IS NOT NULL
  AND status IN ('Running', 'Stopping', 'Suspended');

-- control: a user's stop, suspend, resume and rerun --------------------------------------------

-- name: task_control
-- What a control transition decides from, with the task row locked until the transaction ends.
SELECT row, id, function, status, attempt, node, lease_expires_at IS NOT NULL AS leased
FROM tasks WHERE tenant = %(tenant)s AND id = %(id)s
FOR UPDATE;

-- name: stop_waiting_task
-- Enqueued, Retrying or Suspended-while-queued → Stopped (terminal, no attempt to end).
UPDATE tasks SET status = 'Stopped', finished_at = %(now)s, lease_expires_at = NULL
WHERE row = %(row)s AND status = %(source)s AND attempt = %(attempt)s
  AND lease_expires_at IS NULL;

-- name: stop_live_task
-- Running or Suspended-while-running → Stopping; lease, node and attempt stay until the engine
-- has ended the process and finishes the attempt as Stopped.
UPDATE tasks SET status = 'Stopping'
WHERE row = %(row)s AND status = %(source)s AND attempt = %(attempt)s
  AND lease_expires_at IS NOT NULL;

-- name: suspend_task
-- Enqueued or Retrying (no lease) or Running (lease and node kept) → Suspended.
UPDATE tasks SET status = 'Suspended'
WHERE row = %(row)s AND status = %(source)s AND attempt = %(attempt)s
  AND (lease_expires_at IS NOT NULL) = %(leased)s;

-- name: resume_task
-- Suspended → Running when it holds a lease, else → Enqueued (run_at and started_at unchanged).
UPDATE tasks SET status = %(status)s
WHERE row = %(row)s AND status = 'Suspended' AND attempt = %(attempt)s
  AND (lease_expires_at IS NOT NULL) = %(leased)s;

-- name: rerun_source
SELECT function, status, payload FROM tasks WHERE tenant = %(tenant)s AND id = %(id)s;

-- name: insert_rerun_task
-- With its first event and the wake-up; no row when the id is taken.
WITH inserted AS (
    INSERT INTO tasks (id, tenant, function, status, attempt, max_attempts, priority, payload,
                       created_at, run_at, rerun_of)
    VALUES (%(id)s, %(tenant)s, %(function)s, 'Enqueued', 0, %(max_attempts)s, %(priority)s,
            %(payload)s, %(now)s, %(now)s, %(rerun_of)s)
    ON CONFLICT (tenant, id) DO NOTHING
    RETURNING row
), events AS (
    INSERT INTO task_events (row, seq, at, status, detail)
    SELECT row, 1, %(now)s, 'Enqueued', %(detail)s::text FROM inserted
), notified AS (
    SELECT count(pg_notify('asyncfn_ready', %(tenant)s::text || '/' || %(function)s::text)) AS n
    FROM inserted
)
SELECT i.row FROM inserted i CROSS JOIN notified;

-- upkeep: expiry, lost suspended tasks, retention ----------------------------------------------

-- name: expire_tasks
-- Waiting tasks past the max event age, oldest first (the statuses are sources_of('Expired');
-- a unit test holds them to TRANSITIONS), with their events. Answers each one's created_at
-- and its outbox sources (as outbox_sources).
WITH picked AS (
    SELECT row FROM tasks
    WHERE tenant = %(tenant)s AND function = %(function)s AND status IN ('Enqueued', 'Retrying')
      AND created_at < %(created_before)s
    ORDER BY created_at, row
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), expired AS (
    UPDATE tasks t SET
        status = 'Expired', finished_at = %(now)s, error = %(error)s, lease_expires_at = NULL
    FROM picked WHERE t.row = picked.row
    RETURNING t.row, t.created_at, t.tenant, t.id, t.function
), events AS (
    INSERT INTO task_events (row, seq, at, status, detail)
    SELECT x.row, (SELECT coalesce(max(seq), 0) FROM task_events e WHERE e.row = x.row) + 1,
           %(now)s, 'Expired', jsonb_build_object('created_at', x.created_at)::text
    FROM expired x
)
SELECT x.created_at, x.row, x.tenant, x.id, x.function,
       f.tenant, f.name, f.config, f.code_sha256, f.created_at, f.updated_at, f.paused
FROM expired x LEFT JOIN functions f ON f.tenant = x.tenant AND f.name = x.function
ORDER BY x.row;

-- name: release_lost_task
-- A task Suspended while running on a node that is gone keeps Suspended without its lease; its
-- attempt closes as :outcome and a Suspended event carries :detail.
WITH released AS (
    UPDATE tasks SET lease_expires_at = NULL
    WHERE row = %(row)s AND attempt = %(attempt)s AND status = 'Suspended'
      AND lease_expires_at IS NOT NULL
    RETURNING row
), closed AS (
    UPDATE attempts a SET finished_at = %(now)s, outcome = %(outcome)s
    FROM released r WHERE a.row = r.row AND a.number = %(attempt)s
), events AS (
    INSERT INTO task_events (row, seq, at, status, detail)
    SELECT r.row, (SELECT coalesce(max(seq), 0) FROM task_events e WHERE e.row = r.row) + 1,
           %(now)s, 'Suspended', %(detail)s::text
    FROM released r
)
SELECT row FROM released;

-- name: purge_finished
-- Terminal tasks finished before the bound (finished_at is set exactly when terminal), oldest
-- first; their events, attempts, logs and deliveries go with them (ON DELETE CASCADE).
DELETE FROM tasks WHERE row IN (
    SELECT row FROM tasks WHERE finished_at < %(finished_before)s
    ORDER BY finished_at, row LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED);

-- name: forget_throttles
-- Throttle rows whose next slot has passed: a submission finds such a row and no row alike.
DELETE FROM throttle_state WHERE (tenant, function, key) IN (
    SELECT tenant, function, key FROM throttle_state WHERE tat < %(before)s
    ORDER BY tat LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED);

-- purge: a task's data erased, its state history kept (upkeep.py) -----------------------------

-- name: purge_target
SELECT row, status, purged_at FROM tasks WHERE tenant = %(tenant)s AND id = %(id)s FOR UPDATE;

-- name: purge_task_row
-- An ended task's data erased: payload, result, checkpoint, the error's traceback and the
-- progress message (the error's type and message stay, as does everything about its states).
-- The first purge's time stays. The old row version stays in the table until VACUUM.
UPDATE tasks SET
    payload = ''::bytea, result = NULL, checkpoint = NULL,
    error = CASE WHEN jsonb_typeof(error::jsonb) = 'object'
                 THEN jsonb_set(error::jsonb, '{traceback}', 'null')::text ELSE error END,
    progress = CASE WHEN jsonb_typeof(progress::jsonb) = 'object'
                    THEN jsonb_set(progress::jsonb, '{message}', 'null')::text ELSE progress END,
    purged_at = coalesce(purged_at, %(now)s)
WHERE row = %(row)s AND finished_at IS NOT NULL
RETURNING purged_at;

-- name: purge_task_attempts
UPDATE attempts SET error = jsonb_set(error::jsonb, '{traceback}', 'null')::text
WHERE row = %(row)s AND jsonb_typeof(error::jsonb) = 'object';

-- name: purge_task_logs
DELETE FROM task_logs WHERE row = %(row)s;

-- name: unpurged_ended
-- Ended tasks of a function not purged yet whose deliveries are settled (a pending delivery
-- still reads the task's result), oldest first; rows another node purges are skipped.
SELECT t.row, t.id, t.status FROM tasks t
WHERE t.tenant = %(tenant)s AND t.function = %(function)s
  AND t.finished_at IS NOT NULL AND t.purged_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.row = t.row AND d.status = 'pending')
ORDER BY t.row LIMIT %(limit)s
FOR UPDATE OF t SKIP LOCKED;

-- name: task_purged_at
SELECT purged_at FROM tasks WHERE row = %(row)s;

-- Bulk operations (store/*/operations.py builds the task filter's WHERE; these are the rest).

-- name: max_task_row
SELECT coalesce(max(row), 0) FROM tasks;

-- name: insert_operation
INSERT INTO operations (id, tenant, kind, filter, status, total, max_row, created_at, updated_at)
VALUES (%(id)s, %(tenant)s, %(kind)s, %(filter)s, 'running', %(total)s, %(max_row)s, %(now)s,
        %(now)s)
RETURNING id, tenant, kind, filter, status, total, done, skipped, cursor, max_row, error,
       created_at, updated_at, finished_at, owner, lease_until;

-- name: get_operation
SELECT id, tenant, kind, filter, status, total, done, skipped, cursor, max_row, error,
       created_at, updated_at, finished_at, owner, lease_until
FROM operations WHERE tenant = %(tenant)s AND id = %(id)s;

-- name: list_operations
SELECT id, tenant, kind, filter, status, total, done, skipped, cursor, max_row, error,
       created_at, updated_at, finished_at, owner, lease_until
FROM operations WHERE tenant = %(tenant)s ORDER BY created_at DESC, id DESC LIMIT %(limit)s;

-- name: claim_operation
-- The oldest running operation this node owns already or whose owner's lease has lapsed.
UPDATE operations SET owner = %(node)s, lease_until = %(lease_until)s
WHERE id = (
    SELECT id FROM operations
    WHERE status = 'running'
      AND (owner IS NULL OR owner = %(node)s OR lease_until < %(now)s)
    ORDER BY created_at, id LIMIT 1
    FOR UPDATE SKIP LOCKED
)
RETURNING id, tenant, kind, filter, status, total, done, skipped, cursor, max_row, error,
       created_at, updated_at, finished_at, owner, lease_until;

-- name: save_operation_progress
-- After each batch: what is done, and the last task row handled (a new owner goes on there).
UPDATE operations SET done = %(done)s, skipped = %(skipped)s, cursor = %(cursor)s,
    updated_at = %(now)s, lease_until = %(lease_until)s
WHERE id = %(id)s AND owner = %(node)s AND status = 'running';

-- name: end_operation
UPDATE operations SET status = %(status)s, done = %(done)s, skipped = %(skipped)s,
    cursor = %(cursor)s, error = %(error)s, updated_at = %(now)s, finished_at = %(now)s,
    owner = NULL, lease_until = NULL
WHERE id = %(id)s AND owner = %(node)s AND status = 'running';

-- name: save_progress
UPDATE tasks SET progress = %(progress)s
WHERE row = %(row)s AND attempt = %(attempt)s AND status = 'Running';

-- name: save_checkpoint
UPDATE tasks SET checkpoint = %(checkpoint)s::text
WHERE row = %(row)s AND attempt = %(attempt)s AND status = 'Running';

-- name: lock_task_logs
-- Serialises appends to the same tasks' logs across nodes (rows sorted: no deadlock).
SELECT pg_advisory_xact_lock(r) FROM unnest(%(rows)s::bigint[]) AS r;

-- name: insert_log
-- A batch of lines, numbered after each task's last one (lock_task_logs runs first).
INSERT INTO task_logs (row, seq, at, stream, line)
SELECT l.row,
       (SELECT coalesce(max(seq), 0) FROM task_logs p WHERE p.row = l.row)
           + row_number() OVER (PARTITION BY l.row ORDER BY l.ord),
       l.at, l.stream, l.line
FROM unnest(%(rows)s::bigint[], %(ats)s::float8[], %(streams)s::text[], %(lines)s::text[])
    WITH ORDINALITY AS l (row, at, stream, line, ord);

-- outbox: destination deliveries (store/postgres/outbox.py) ------------------------------------

-- name: outbox_sources
-- Tasks that just ended, with their function's row (the 7 columns of get_function; NULLs when
-- the function is gone).
SELECT t.row, t.tenant, t.id, t.function,
       f.tenant, f.name, f.config, f.code_sha256, f.created_at, f.updated_at, f.paused
FROM tasks t LEFT JOIN functions f ON f.tenant = t.tenant AND f.name = t.function
WHERE t.row = ANY (%(rows)s::bigint[]);

-- name: insert_delivery
INSERT INTO deliveries (id, row, tenant, task_id, function, destination, status, attempts,
                        next_at, created_at)
SELECT d.id, d.row, d.tenant, d.task_id, d.function, d.destination, 'pending', 0,
       %(now)s, %(now)s
FROM unnest(%(ids)s::text[], %(rows)s::bigint[], %(tenants)s::text[], %(task_ids)s::text[],
            %(functions)s::text[], %(destinations)s::text[])
    AS d (id, row, tenant, task_id, function, destination);

-- name: claim_deliveries
-- Due pending deliveries whose lease is free or expired, oldest due first; each claim is an
-- attempt. SKIP LOCKED: concurrent deliverers take disjoint rows.
WITH picked AS (
    SELECT id FROM deliveries
    WHERE status = 'pending' AND next_at <= %(now)s
      AND (lease_expires_at IS NULL OR lease_expires_at <= %(now)s)
    ORDER BY next_at, id LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE deliveries d SET
    attempts = d.attempts + 1, lease_expires_at = %(lease_until)s, node = %(node)s
FROM picked WHERE d.id = picked.id
RETURNING d.id, d.row, d.tenant, d.task_id, d.function, d.destination, d.status, d.attempts,
          d.next_at, d.created_at, d.delivered_at, d.last_error;

-- name: delivery_done
UPDATE deliveries SET status = 'delivered', delivered_at = %(now)s, lease_expires_at = NULL,
                      last_error = NULL
WHERE id = %(id)s AND status = 'pending' AND attempts = %(attempt)s;

-- name: delivery_failed
-- :next_at NULL → dead (out of retries, or it can never succeed).
UPDATE deliveries SET
    status = CASE WHEN %(next_at)s::float8 IS NULL THEN 'dead' ELSE 'pending' END,
    next_at = coalesce(%(next_at)s::float8, next_at), lease_expires_at = NULL,
    last_error = %(error)s
WHERE id = %(id)s AND status = 'pending' AND attempts = %(attempt)s;

-- name: task_deliveries
SELECT id, row, tenant, task_id, function, destination, status, attempts, next_at,
       created_at, delivered_at, last_error
FROM deliveries WHERE row = %(row)s ORDER BY created_at, id;

-- name: task_row
SELECT row FROM tasks WHERE tenant = %(tenant)s AND id = %(id)s;

-- dead letters (deadletters.py) ----------------------------------------------------------------

-- name: insert_dead_letters
-- The tasks of :rows that ended Failed or Expired, listed in the transaction that ended them
-- (which holds their rows); an entry already there stays as it is. `reason` keeps the error's
-- type and message only: the list shows the task's own error, so a purge erases it there.
INSERT INTO dead_letters (row, tenant, function, task_id, status, reason, at)
SELECT row, tenant, function, id, status,
       jsonb_build_object('type', error::jsonb ->> 'type',
                          'message', error::jsonb ->> 'message')::text,
       coalesce(finished_at, %(now)s)
FROM tasks
WHERE row = ANY(%(rows)s::bigint[]) AND status IN ('Failed', 'Expired')
ON CONFLICT (row) DO NOTHING;

-- name: list_dead_letters
-- Newest first: before the cursor (:at, :row), the previous page's last entry.
SELECT d.row, d.task_id, d.function, d.status, coalesce(t.error, d.reason), t.attempt, d.at,
       d.rerun_as, d.rerun_at
FROM dead_letters d JOIN tasks t ON t.row = d.row
WHERE d.tenant = %(tenant)s AND (d.at, d.row) < (%(at)s::float8, %(row)s::bigint)
ORDER BY d.at DESC, d.row DESC LIMIT %(limit)s;

-- name: list_function_dead_letters
SELECT d.row, d.task_id, d.function, d.status, coalesce(t.error, d.reason), t.attempt, d.at,
       d.rerun_as, d.rerun_at
FROM dead_letters d JOIN tasks t ON t.row = d.row
WHERE d.tenant = %(tenant)s AND d.function = %(function)s
  AND (d.at, d.row) < (%(at)s::float8, %(row)s::bigint)
ORDER BY d.at DESC, d.row DESC LIMIT %(limit)s;

-- name: dead_letter_of_task
-- Locks the entry: a concurrent rerun of it waits, then finds it rerun.
SELECT d.row, d.rerun_as FROM tasks t JOIN dead_letters d ON d.row = t.row
WHERE t.tenant = %(tenant)s AND t.id = %(id)s
FOR UPDATE OF d;

-- name: mark_dead_letter_rerun
UPDATE dead_letters SET rerun_as = %(rerun_as)s, rerun_at = %(now)s
WHERE row = %(row)s AND rerun_as IS NULL;

-- reads --------------------------------------------------------------------------------------

-- name: get_task
-- The 20 task columns, then `attributes` (only a single task's read carries it).
SELECT row, id, tenant, function, status, attempt, max_attempts, priority, payload,
       created_at, run_at, started_at, finished_at, result, error, progress, checkpoint,
       instance_id, node, rerun_of, attributes
FROM tasks WHERE tenant = %(tenant)s AND id = %(id)s;

-- name: task_events
SELECT status, at, detail FROM task_events WHERE row = %(row)s ORDER BY seq;

-- name: task_attempts
SELECT number, started_at, finished_at, instance_id, node, outcome, error, cpu_ms, max_rss_mb,
       instance_started_at
FROM attempts WHERE row = %(row)s ORDER BY number;

-- name: list_tasks
-- Newest first; :before is the previous page's cursor (the largest row when there is none).
SELECT row, id, tenant, function, status, attempt, max_attempts, priority, payload,
       created_at, run_at, started_at, finished_at, result, error, progress, checkpoint,
       instance_id, node, rerun_of
FROM tasks
WHERE tenant = %(tenant)s AND row < %(before)s
  AND (%(status)s::text IS NULL OR status = %(status)s::text)
  AND (%(since)s::float8 IS NULL OR created_at >= %(since)s::float8)
  AND (%(until)s::float8 IS NULL OR created_at < %(until)s::float8)
ORDER BY row DESC LIMIT %(limit)s;

-- name: list_function_tasks
SELECT row, id, tenant, function, status, attempt, max_attempts, priority, payload,
       created_at, run_at, started_at, finished_at, result, error, progress, checkpoint,
       instance_id, node, rerun_of
FROM tasks
WHERE tenant = %(tenant)s AND function = %(function)s AND row < %(before)s
  AND (%(status)s::text IS NULL OR status = %(status)s::text)
  AND (%(since)s::float8 IS NULL OR created_at >= %(since)s::float8)
  AND (%(until)s::float8 IS NULL OR created_at < %(until)s::float8)
ORDER BY row DESC LIMIT %(limit)s;

-- name: read_logs
SELECT seq, at, stream, line FROM task_logs
WHERE row = %(row)s AND seq > %(after)s ORDER BY seq LIMIT %(limit)s;

-- name: find_lost
-- Tasks holding a lease (Running, Stopping, Suspended while running) whose lease expired,
-- plus every one of :node when it is given (each side uses its partial index).
SELECT row, id, tenant, function, status, attempt, max_attempts, node, started_at
FROM tasks
WHERE row IN (
    SELECT row FROM tasks WHERE lease_expires_at <= %(now)s
    UNION ALL
    SELECT row FROM tasks WHERE node = %(node)s::text AND lease_expires_at IS NOT NULL)
  AND status IN ('Running', 'Stopping', 'Suspended')
ORDER BY row LIMIT %(limit)s;

-- name: next_run_at
-- The earliest run_at of a function's Enqueued tasks: a loose scan of the dispatch index, one
-- seek per priority level, so tasks delayed behind the first of their level are never read.
WITH RECURSIVE levels (priority) AS (
    SELECT max(priority) FROM tasks
    WHERE tenant = %(tenant)s AND function = %(function)s AND status = 'Enqueued'
    UNION ALL
    SELECT (SELECT max(priority) FROM tasks
            WHERE tenant = %(tenant)s AND function = %(function)s AND status = 'Enqueued'
              AND priority < l.priority)
    FROM levels l WHERE l.priority IS NOT NULL
)
SELECT min((SELECT min(run_at) FROM tasks
            WHERE tenant = %(tenant)s AND function = %(function)s AND status = 'Enqueued'
              AND priority = l.priority))
FROM levels l WHERE l.priority IS NOT NULL;

-- name: next_retry_at
SELECT min(run_at) FROM tasks WHERE status = 'Retrying';

-- name: count_by_status
SELECT status, count(*) FROM tasks
WHERE tenant = %(tenant)s AND function = %(function)s GROUP BY status;

-- name: queue_stats
-- The waiting tasks (due or not) per function and the oldest one's creation (tasks_expiry).
SELECT tenant, function, count(*), min(created_at) FROM tasks
WHERE status IN ('Enqueued', 'Retrying')
GROUP BY tenant, function ORDER BY tenant, function;

-- name: recent_ended_tasks
-- A function's latest ended tasks, newest first: the window of the latency percentiles and
-- resource sums.
SELECT row, created_at, run_at, started_at, finished_at FROM tasks
WHERE tenant = %(tenant)s AND function = %(function)s AND finished_at IS NOT NULL
ORDER BY row DESC LIMIT %(limit)s;

-- name: recent_attempts
-- The attempts of the tasks `recent_ended_tasks` found.
SELECT started_at, finished_at, cpu_ms, max_rss_mb FROM attempts
WHERE row = ANY (%(rows)s::bigint[]);

-- name: finished_since
SELECT count(*) FROM tasks
WHERE finished_at >= %(since)s AND tenant = %(tenant)s AND function = %(function)s;

-- name: submitted_since
-- Tasks of a function created since `since`: the rows after the newest one created before it
-- (tasks_list_function walked newest first; cost: the last minute's tasks). Across nodes, rows
-- follow commit order, so a task committed late by a node with a skewed clock may be missed.
SELECT count(*) FROM tasks
WHERE tenant = %(tenant)s AND function = %(function)s
  AND row > coalesce((SELECT row FROM tasks
                      WHERE tenant = %(tenant)s AND function = %(function)s
                        AND created_at < %(since)s
                      ORDER BY row DESC LIMIT 1), 0);

-- name: delayed_at
-- Waiting tasks of a function not due at `now`: Enqueued with a later run_at (a delay) and
-- Retrying waiting out their backoff.
SELECT count(*) FROM tasks
WHERE tenant = %(tenant)s AND function = %(function)s AND status IN ('Enqueued', 'Retrying')
  AND run_at > %(now)s;

-- schedules ------------------------------------------------------------------------------------
-- A schedule is read as the 13 columns of `get_schedule`, in that order.

-- name: upsert_schedule
-- A new config replaces the old one; created_at and last_fire_at are kept. Answers whether the
-- row was created.
INSERT INTO schedules (tenant, name, function, cron, every_s, timezone, payload, enabled,
                       catch_up, last_fire_at, next_fire_at, created_at, updated_at)
VALUES (%(tenant)s, %(name)s, %(function)s, %(cron)s::text, %(every_s)s::bigint, %(timezone)s,
        %(payload)s, %(enabled)s, %(catch_up)s, NULL, %(next_fire_at)s::float8, %(now)s,
        %(now)s)
ON CONFLICT (tenant, name) DO UPDATE SET
    function = excluded.function, cron = excluded.cron, every_s = excluded.every_s,
    timezone = excluded.timezone, payload = excluded.payload, enabled = excluded.enabled,
    catch_up = excluded.catch_up, next_fire_at = excluded.next_fire_at,
    updated_at = excluded.updated_at
RETURNING (xmax = 0) AS created;

-- name: get_schedule
SELECT tenant, name, function, cron, every_s, timezone, payload, enabled, catch_up,
       last_fire_at, next_fire_at, created_at, updated_at
FROM schedules WHERE tenant = %(tenant)s AND name = %(name)s;

-- name: list_schedules
SELECT tenant, name, function, cron, every_s, timezone, payload, enabled, catch_up,
       last_fire_at, next_fire_at, created_at, updated_at
FROM schedules WHERE tenant = %(tenant)s ORDER BY name;

-- name: delete_schedule
DELETE FROM schedules WHERE tenant = %(tenant)s AND name = %(name)s RETURNING name;

-- name: due_schedules
-- Enabled schedules due by :now, earliest first (the schedules_due index).
SELECT tenant, name, function, cron, every_s, timezone, payload, enabled, catch_up,
       last_fire_at, next_fire_at, created_at, updated_at
FROM schedules WHERE enabled AND next_fire_at <= %(now)s
ORDER BY next_fire_at LIMIT %(limit)s;

-- name: next_schedule_at
SELECT min(next_fire_at) FROM schedules WHERE enabled;

-- name: fire_schedule
-- A tick's bookkeeping, guarded: the schedule exists and is enabled. The row stays locked until
-- the tick's task is inserted, so two runners firing one tick make one task. Both times only
-- move on, so firing an older tick again never moves the schedule back.
UPDATE schedules
SET last_fire_at = greatest(coalesce(last_fire_at, %(tick)s), %(tick)s),
    next_fire_at = greatest(coalesce(next_fire_at, %(next_fire_at)s), %(next_fire_at)s)
WHERE tenant = %(tenant)s AND name = %(name)s AND enabled
RETURNING function;

-- name: skip_schedule
-- Move next_fire_at on without firing (missed ticks, a missing function); never back.
UPDATE schedules
SET next_fire_at = greatest(coalesce(next_fire_at, %(next_fire_at)s), %(next_fire_at)s)
WHERE tenant = %(tenant)s AND name = %(name)s AND enabled;

-- triggers -------------------------------------------------------------------------------------
-- A trigger is read as the 9 columns of `get_trigger`, in that order.

-- name: upsert_trigger
-- A new config replaces the old one; created_at is kept. Answers whether the row was created.
INSERT INTO triggers (tenant, name, function, type, settings, enabled, max_queue_depth,
                      created_at, updated_at)
VALUES (%(tenant)s, %(name)s, %(function)s, %(type)s, %(settings)s, %(enabled)s,
        %(max_queue_depth)s, %(now)s, %(now)s)
ON CONFLICT (tenant, name) DO UPDATE SET
    function = excluded.function, type = excluded.type, settings = excluded.settings,
    enabled = excluded.enabled, max_queue_depth = excluded.max_queue_depth,
    updated_at = excluded.updated_at
RETURNING (xmax = 0) AS created;

-- name: get_trigger
SELECT tenant, name, function, type, settings, enabled, max_queue_depth, created_at, updated_at
FROM triggers WHERE tenant = %(tenant)s AND name = %(name)s;

-- name: list_triggers
SELECT tenant, name, function, type, settings, enabled, max_queue_depth, created_at, updated_at
FROM triggers WHERE tenant = %(tenant)s ORDER BY name;

-- name: all_triggers
SELECT tenant, name, function, type, settings, enabled, max_queue_depth, created_at, updated_at
FROM triggers ORDER BY tenant, name;

-- name: delete_trigger
DELETE FROM triggers WHERE tenant = %(tenant)s AND name = %(name)s RETURNING name;

-- name: queue_depth
-- A function's waiting tasks, due or not (the partial index tasks_expiry answers it).
SELECT count(*) FROM tasks
WHERE tenant = %(tenant)s AND function = %(function)s AND status IN ('Enqueued', 'Retrying');

-- tenants and API keys ---------------------------------------------------------------------------

-- name: create_tenant
INSERT INTO tenants (name, created_at) VALUES (%(name)s, %(now)s)
ON CONFLICT (name) DO NOTHING RETURNING name;

-- name: list_tenants
SELECT name, created_at, max_running, submit_rate, submit_burst FROM tenants ORDER BY name;

-- name: get_tenant
SELECT name, created_at, max_running, submit_rate, submit_burst FROM tenants
WHERE name = %(name)s;

-- name: set_tenant_limits
UPDATE tenants SET
    max_running = %(max_running)s::integer, submit_rate = %(submit_rate)s::double precision,
    submit_burst = %(submit_burst)s::integer
WHERE name = %(name)s
RETURNING name, created_at, max_running, submit_rate, submit_burst;

-- name: create_key
INSERT INTO api_keys (id, tenant, hash, name, created_at)
VALUES (%(id)s, %(tenant)s, %(hash)s, %(name)s::text, %(now)s);

-- name: find_key
SELECT id, tenant, hash, name, created_at, revoked_at FROM api_keys WHERE hash = %(hash)s;

-- name: list_keys
SELECT id, tenant, hash, name, created_at, revoked_at FROM api_keys
WHERE %(tenant)s::text IS NULL OR tenant = %(tenant)s::text ORDER BY tenant, created_at, id;

-- name: revoke_key
-- One statement: no row when there is no such key, false when it was revoked already.
WITH revoked AS (
    UPDATE api_keys SET revoked_at = %(now)s
    WHERE id = %(id)s AND revoked_at IS NULL RETURNING id
)
SELECT EXISTS (SELECT 1 FROM revoked) FROM api_keys WHERE id = %(id)s;

-- name: count_active_keys
SELECT count(*) FROM api_keys WHERE revoked_at IS NULL;

-- name: keep_secret
-- The first value offered for a name stays; every later offer answers it (a concurrent first
-- offer waits on the insert, then reads the winner's value in get_secret).
INSERT INTO secrets (name, value, created_at) VALUES (%(name)s, %(value)s, %(now)s)
ON CONFLICT (name) DO NOTHING;

-- name: get_secret
SELECT value FROM secrets WHERE name = %(name)s;

-- flow control ---------------------------------------------------------------------------------
-- A claim under a quota runs these in one transaction with the claim, holding the advisory
-- locks that serialize it with every other claim under that quota (postgres/flow.py).

-- name: count_running_function
-- The tasks of a function holding an attempt (a lease): the partial index tasks_running.
SELECT count(*) FROM tasks
WHERE tenant = %(tenant)s AND function = %(function)s AND lease_expires_at IS NOT NULL
  AND status IN ('Running', 'Stopping', 'Suspended');

-- name: count_running_tenant
SELECT count(*) FROM tasks
WHERE tenant = %(tenant)s AND lease_expires_at IS NOT NULL
  AND status IN ('Running', 'Stopping', 'Suspended');

-- name: running_counts
-- Per function, the tasks holding an attempt, across the cluster (tasks_running).
SELECT tenant, function, count(*) FROM tasks
WHERE lease_expires_at IS NOT NULL AND status IN ('Running', 'Stopping', 'Suspended')
GROUP BY tenant, function ORDER BY tenant, function;

-- name: get_flow_bucket
SELECT tokens, updated_at FROM flow_buckets
WHERE tenant = %(tenant)s AND function = %(function)s;

-- name: put_flow_bucket
INSERT INTO flow_buckets (tenant, function, tokens, updated_at)
VALUES (%(tenant)s, %(function)s, %(tokens)s, %(updated_at)s)
ON CONFLICT (tenant, function) DO UPDATE SET
    tokens = excluded.tokens, updated_at = excluded.updated_at;

-- name: create_signing_key
INSERT INTO signing_keys (id, tenant, secret_sealed, name, created_at)
VALUES (%(id)s, %(tenant)s, %(secret_sealed)s, %(name)s::text, %(now)s);

-- name: find_signing_key
SELECT id, tenant, secret_sealed, name, created_at, revoked_at FROM signing_keys
WHERE id = %(id)s;

-- name: list_signing_keys
SELECT id, tenant, secret_sealed, name, created_at, revoked_at FROM signing_keys
WHERE %(tenant)s::text IS NULL OR tenant = %(tenant)s::text ORDER BY tenant, created_at, id;

-- name: revoke_signing_key
UPDATE signing_keys SET revoked_at = %(now)s
WHERE id = %(id)s AND revoked_at IS NULL RETURNING id;

-- Nodes: each node's heartbeat upserts its row; live ones were seen since a cutoff.

-- name: node_heartbeat
INSERT INTO nodes (name, role, labels, started_at, seen_at)
VALUES (%(name)s, %(role)s, %(labels)s, %(started_at)s, %(seen_at)s)
ON CONFLICT (name) DO UPDATE SET
    role = excluded.role, labels = excluded.labels, started_at = excluded.started_at,
    seen_at = excluded.seen_at;

-- name: forget_node
DELETE FROM nodes WHERE name = %(name)s;

-- name: live_nodes
SELECT name, role, labels, started_at, seen_at FROM nodes WHERE seen_at >= %(since)s
ORDER BY name;
