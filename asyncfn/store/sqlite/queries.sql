-- The SQLite store's statements, by name (asyncfn.store.sql loads them).
-- PostgreSQL's queries.sql uses the same names. Parameters are :named.
-- A task row is read as the 20 columns of `get_task`, in that order (rows.task_from_row);
-- a function as the 7 columns of `get_function` (rows.function_from_row).

-- functions and code -------------------------------------------------------------------------

-- name: function_exists
SELECT 1 FROM functions WHERE tenant = :tenant AND name = :name;

-- name: upsert_function
-- A new config replaces the old; the code hash is kept unless the spec carries one; `paused`
-- is left alone (set_function_paused owns it).
INSERT INTO functions (tenant, name, config, code_sha256, created_at, updated_at)
VALUES (:tenant, :name, :config, :code_sha256, :created_at, :updated_at)
ON CONFLICT (tenant, name) DO UPDATE SET
    config = excluded.config,
    code_sha256 = coalesce(excluded.code_sha256, functions.code_sha256),
    updated_at = excluded.updated_at;

-- name: get_function
SELECT tenant, name, config, code_sha256, created_at, updated_at, paused
FROM functions WHERE tenant = :tenant AND name = :name;

-- name: list_functions
SELECT tenant, name, config, code_sha256, created_at, updated_at, paused
FROM functions WHERE :tenant IS NULL OR tenant = :tenant
ORDER BY tenant, name;

-- name: delete_function
DELETE FROM functions WHERE tenant = :tenant AND name = :name RETURNING name;

-- name: invalidate_waiting_tasks
UPDATE tasks SET status = 'Invalid', finished_at = :now, lease_expires_at = NULL
WHERE tenant = :tenant AND function = :function
  AND status IN ('Enqueued', 'Retrying', 'Suspended')
RETURNING row;

-- name: set_function_code
UPDATE functions SET code_sha256 = :sha256, updated_at = :now
WHERE tenant = :tenant AND name = :name
RETURNING tenant, name, config, code_sha256, created_at, updated_at, paused;

-- name: set_function_paused
UPDATE functions SET paused = :paused, updated_at = :now
WHERE tenant = :tenant AND name = :name
RETURNING tenant, name, config, code_sha256, created_at, updated_at, paused;

-- name: insert_code
INSERT INTO code_bundles (sha256, data, size, created_at)
VALUES (:sha256, :data, :size, :now)
ON CONFLICT (sha256) DO NOTHING;

-- name: get_code
SELECT data FROM code_bundles WHERE sha256 = :sha256;

-- transitions --------------------------------------------------------------------------------

-- name: insert_task
INSERT INTO tasks (id, tenant, function, status, attempt, max_attempts, priority, payload,
                   created_at, run_at, attributes, ckey1, ckey2, ckey3, debounce_key,
                   throttle_key)
VALUES (:id, :tenant, :function, 'Enqueued', 0, :max_attempts, :priority, :payload,
        :now, :run_at, :attributes, :ckey1, :ckey2, :ckey3, :debounce_key, :throttle_key)
ON CONFLICT (tenant, id) DO NOTHING;

-- name: insert_new_task
-- A task with a freshly generated id, which cannot be taken.
INSERT INTO tasks (id, tenant, function, status, attempt, max_attempts, priority, payload,
                   created_at, run_at, attributes, ckey1, ckey2, ckey3, debounce_key,
                   throttle_key)
VALUES (:id, :tenant, :function, 'Enqueued', 0, :max_attempts, :priority, :payload,
        :now, :run_at, :attributes, :ckey1, :ckey2, :ckey3, :debounce_key, :throttle_key);

-- name: insert_new_tasks
-- Many tasks with freshly generated ids, from :rows, a JSON array of
-- [id, priority, payload text, run_at, attributes, ckey1, ckey2, ckey3, debounce_key,
--  throttle_key] (the payload's UTF-8 bytes are stored as the BLOB they were).
INSERT INTO tasks (id, tenant, function, status, attempt, max_attempts, priority, payload,
                   created_at, run_at, attributes, ckey1, ckey2, ckey3, debounce_key,
                   throttle_key)
SELECT value ->> 0, :tenant, :function, 'Enqueued', 0, :max_attempts, value ->> 1,
       CAST(value ->> 2 AS BLOB), :now, value ->> 3, value ->> 4, value ->> 5, value ->> 6,
       value ->> 7, value ->> 8, value ->> 9
FROM json_each(:rows)
ORDER BY key;

-- name: insert_enqueued_events
-- The Enqueued events of the consecutive rows :first, :first + 1, … with the details in
-- :details (a JSON array of detail texts or nulls).
INSERT INTO task_events (row, seq, at, status, detail)
SELECT :first + key, 1, :now, 'Enqueued', value FROM json_each(:details);

-- name: task_row_status
SELECT row, status FROM tasks WHERE tenant = :tenant AND id = :id;

-- shaping: debounce and throttle at submission (shaping.py) ------------------------------------

-- name: debounce_pending
-- The waiting tasks of the debounce keys :keys (a JSON list): Enqueued, never attempted, not
-- claimed; what a new submission with the same key supersedes. (The planner, left alone,
-- prefers walking all the function's tasks.)
SELECT debounce_key, row, id, coalesce(debounce_first_at, created_at), run_at
FROM tasks INDEXED BY tasks_debounce
WHERE tenant = :tenant AND function = :function AND status = 'Enqueued'
  AND debounce_key IN (SELECT value FROM json_each(:keys))
  AND attempt = 0 AND lease_expires_at IS NULL
ORDER BY row;

-- name: set_debounce_first_at
UPDATE tasks SET debounce_first_at = :first_at WHERE row = :row;

-- name: throttle_tats
SELECT key, tat FROM throttle_state
WHERE tenant = :tenant AND function = :function AND key IN (SELECT value FROM json_each(:keys));

-- name: save_throttle_tat
INSERT INTO throttle_state (tenant, function, key, tat) VALUES (:tenant, :function, :key, :tat)
ON CONFLICT (tenant, function, key) DO UPDATE SET tat = excluded.tat;


-- name: insert_first_event
INSERT INTO task_events (row, seq, at, status, detail) VALUES (:row, 1, :at, :status, :detail);

-- name: insert_event
-- Events of a task are numbered 1, 2, 3… in the order they happened.
INSERT INTO task_events (row, seq, at, status, detail)
SELECT :row, coalesce(max(seq), 0) + 1, :at, :status, :detail
FROM task_events WHERE row = :row;

-- name: top_priority_below
-- The highest priority level under :below that has Enqueued tasks: one seek of the dispatch
-- index. claim_ready walks the levels down with it, so tasks delayed for later (which sort
-- after the due ones of their level) are never scanned.
SELECT max(priority) FROM tasks
WHERE tenant = :tenant AND function = :function AND status = 'Enqueued'
  AND priority < :below;

-- name: claim_ready
-- The due tasks of one priority level, oldest first. RETURNING comes in no particular order:
-- the caller sorts by the same key. Tasks created before :created_after are past their max
-- event age and left for expire_tasks.
UPDATE tasks SET
    status = 'Running', attempt = attempt + 1, started_at = :now, node = :node,
    lease_expires_at = :lease_until, instance_id = NULL
WHERE row IN (
    SELECT row FROM tasks
    WHERE tenant = :tenant AND function = :function AND status = 'Enqueued'
      AND priority = :priority AND run_at <= :now AND created_at >= :created_after
    ORDER BY run_at, row
    LIMIT :limit)
RETURNING row, id, tenant, function, attempt, max_attempts, payload, created_at, started_at,
          checkpoint, priority, run_at, attributes;

-- name: insert_attempt
INSERT INTO attempts (row, number, started_at, node)
VALUES (:row, :number, :started_at, :node);

-- name: finish_task
-- :sources is a JSON list: the statuses a task in an attempt may reach :status from. A
-- Suspended task is in an attempt only while it holds a lease (it was suspended running).
UPDATE tasks SET
    status = :status, finished_at = :at, result = :result, error = :error,
    lease_expires_at = NULL, instance_id = coalesce(:instance_id, instance_id)
WHERE row = :row AND attempt = :attempt
  AND status IN (SELECT value FROM json_each(:sources))
  AND (status <> 'Suspended' OR lease_expires_at IS NOT NULL);

-- name: retry_task
-- :sources as in finish_task, for Retrying.
UPDATE tasks SET
    status = 'Retrying', run_at = :run_at, error = :error, lease_expires_at = NULL,
    instance_id = coalesce(:instance_id, instance_id)
WHERE row = :row AND attempt = :attempt
  AND status IN (SELECT value FROM json_each(:sources))
  AND (status <> 'Suspended' OR lease_expires_at IS NOT NULL);

-- name: close_attempt
UPDATE attempts SET
    finished_at = :at, outcome = :outcome, error = :error, cpu_ms = :cpu_ms,
    max_rss_mb = :max_rss_mb, instance_id = coalesce(:instance_id, instance_id),
    instance_started_at = coalesce(:instance_started_at, instance_started_at)
WHERE row = :row AND number = :attempt;

-- name: promote_due
UPDATE tasks SET status = 'Enqueued'
WHERE row IN (
    SELECT row FROM tasks WHERE status = 'Retrying' AND run_at <= :now
    ORDER BY run_at, row LIMIT :limit)
RETURNING row, tenant, function, run_at;

-- name: renew_leases
-- :rows is a JSON list of task rows. The live attempts: Running, Stopping, and Suspended
-- while running (those hold a lease; a Suspended task without one is only held in the queue).
UPDATE tasks SET lease_expires_at = :until
WHERE row IN (SELECT value FROM json_each(:rows))
  AND node = :node AND lease_expires_at IS NOT NULL
  AND status IN ('Running', 'Stopping', 'Suspended');

-- control: a user's stop, suspend, resume and rerun --------------------------------------------

-- name: task_control
-- What a control transition decides from: the status, the attempt, and whether a lease is held.
SELECT row, id, function, status, attempt, node, lease_expires_at IS NOT NULL AS leased
FROM tasks WHERE tenant = :tenant AND id = :id;

-- name: stop_waiting_task
-- Enqueued, Retrying or Suspended-while-queued → Stopped (terminal, no attempt to end).
UPDATE tasks SET status = 'Stopped', finished_at = :now, lease_expires_at = NULL
WHERE row = :row AND status = :source AND attempt = :attempt AND lease_expires_at IS NULL;

-- name: stop_live_task
-- Running or Suspended-while-running → Stopping; lease, node and attempt stay until the engine
-- has ended the process and finishes the attempt as Stopped.
UPDATE tasks SET status = 'Stopping'
WHERE row = :row AND status = :source AND attempt = :attempt AND lease_expires_at IS NOT NULL;

-- name: suspend_task
-- Enqueued or Retrying (no lease) or Running (lease and node kept) → Suspended.
UPDATE tasks SET status = 'Suspended'
WHERE row = :row AND status = :source AND attempt = :attempt
  AND (lease_expires_at IS NOT NULL) = :leased;

-- name: resume_task
-- Suspended → Running when it holds a lease, else → Enqueued (run_at and started_at unchanged).
UPDATE tasks SET status = :status
WHERE row = :row AND status = 'Suspended' AND attempt = :attempt
  AND (lease_expires_at IS NOT NULL) = :leased;

-- name: rerun_source
SELECT function, status, payload FROM tasks WHERE tenant = :tenant AND id = :id;

-- name: insert_rerun_task
INSERT INTO tasks (id, tenant, function, status, attempt, max_attempts, priority, payload,
                   created_at, run_at, rerun_of)
VALUES (:id, :tenant, :function, 'Enqueued', 0, :max_attempts, :priority, :payload,
        :now, :now, :rerun_of)
ON CONFLICT (tenant, id) DO NOTHING;

-- upkeep: expiry, lost suspended tasks, retention ----------------------------------------------

-- name: expire_tasks
-- Waiting tasks past the max event age, oldest first (the statuses are sources_of('Expired');
-- a unit test holds them to TRANSITIONS).
UPDATE tasks SET status = 'Expired', finished_at = :now, error = :error, lease_expires_at = NULL
WHERE row IN (
    SELECT row FROM tasks
    WHERE tenant = :tenant AND function = :function AND status IN ('Enqueued', 'Retrying')
      AND created_at < :created_before
    ORDER BY created_at, row
    LIMIT :limit)
RETURNING row, created_at;

-- name: release_lost_task
-- A task Suspended while running on a node that is gone keeps Suspended without its lease.
UPDATE tasks SET lease_expires_at = NULL
WHERE row = :row AND attempt = :attempt AND status = 'Suspended'
  AND lease_expires_at IS NOT NULL;

-- name: purge_finished
-- Terminal tasks finished before the bound (finished_at is set exactly when terminal), oldest
-- first; their events, attempts and logs go with them (ON DELETE CASCADE).
DELETE FROM tasks WHERE row IN (
    SELECT row FROM tasks WHERE finished_at < :finished_before
    ORDER BY finished_at, row LIMIT :limit);

-- name: forget_throttles
-- Throttle rows whose next slot has passed: a submission finds such a row and no row alike.
DELETE FROM throttle_state WHERE (tenant, function, key) IN (
    SELECT tenant, function, key FROM throttle_state WHERE tat < :before
    ORDER BY tat LIMIT :limit);

-- purge: a task's data erased, its state history kept (upkeep.py) -----------------------------

-- name: purge_target
SELECT row, status, purged_at FROM tasks WHERE tenant = :tenant AND id = :id;

-- name: purge_task_row
-- An ended task's data erased: payload, result, checkpoint, the error's traceback and the
-- progress message (the error's type and message stay, as does everything about its states).
-- The first purge's time stays.
UPDATE tasks SET
    payload = X'', result = NULL, checkpoint = NULL,
    error = CASE WHEN json_type(error) = 'object'
                 THEN json_set(error, '$.traceback', NULL) ELSE error END,
    progress = CASE WHEN json_type(progress) = 'object'
                    THEN json_set(progress, '$.message', NULL) ELSE progress END,
    purged_at = coalesce(purged_at, :now)
WHERE row = :row AND finished_at IS NOT NULL
RETURNING purged_at;

-- name: purge_task_attempts
UPDATE attempts SET error = json_set(error, '$.traceback', NULL)
WHERE row = :row AND json_type(error) = 'object';

-- name: purge_task_logs
DELETE FROM task_logs WHERE row = :row;

-- name: unpurged_ended
-- Ended tasks of a function not purged yet whose deliveries are settled (a pending delivery
-- still reads the task's result), oldest first (the partial index tasks_unpurged).
SELECT t.row, t.id, t.status FROM tasks t
WHERE t.tenant = :tenant AND t.function = :function
  AND t.finished_at IS NOT NULL AND t.purged_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.row = t.row AND d.status = 'pending')
ORDER BY t.row LIMIT :limit;

-- name: task_purged_at
SELECT purged_at FROM tasks WHERE row = :row;

-- Bulk operations (store/*/operations.py builds the task filter's WHERE; these are the rest).

-- name: max_task_row
SELECT coalesce(max(row), 0) FROM tasks;

-- name: insert_operation
INSERT INTO operations (id, tenant, kind, filter, status, total, max_row, created_at, updated_at)
VALUES (:id, :tenant, :kind, :filter, 'running', :total, :max_row, :now, :now)
RETURNING id, tenant, kind, filter, status, total, done, skipped, cursor, max_row, error,
       created_at, updated_at, finished_at, owner, lease_until;

-- name: get_operation
SELECT id, tenant, kind, filter, status, total, done, skipped, cursor, max_row, error,
       created_at, updated_at, finished_at, owner, lease_until
FROM operations WHERE tenant = :tenant AND id = :id;

-- name: list_operations
SELECT id, tenant, kind, filter, status, total, done, skipped, cursor, max_row, error,
       created_at, updated_at, finished_at, owner, lease_until
FROM operations WHERE tenant = :tenant ORDER BY created_at DESC, id DESC LIMIT :limit;

-- name: claim_operation
-- The oldest running operation this node owns already or whose owner's lease has lapsed.
UPDATE operations SET owner = :node, lease_until = :lease_until
WHERE id = (
    SELECT id FROM operations
    WHERE status = 'running'
      AND (owner IS NULL OR owner = :node OR lease_until < :now)
    ORDER BY created_at, id LIMIT 1
)
RETURNING id, tenant, kind, filter, status, total, done, skipped, cursor, max_row, error,
       created_at, updated_at, finished_at, owner, lease_until;

-- name: save_operation_progress
-- After each batch: what is done, and the last task row handled (a new owner goes on there).
UPDATE operations SET done = :done, skipped = :skipped, cursor = :cursor,
    updated_at = :now, lease_until = :lease_until
WHERE id = :id AND owner = :node AND status = 'running';

-- name: end_operation
UPDATE operations SET status = :status, done = :done, skipped = :skipped,
    cursor = :cursor, error = :error, updated_at = :now, finished_at = :now,
    owner = NULL, lease_until = NULL
WHERE id = :id AND owner = :node AND status = 'running';

-- name: save_progress
UPDATE tasks SET progress = :progress
WHERE row = :row AND attempt = :attempt AND status = 'Running';

-- name: save_checkpoint
UPDATE tasks SET checkpoint = :checkpoint
WHERE row = :row AND attempt = :attempt AND status = 'Running';

-- name: last_log_seq
SELECT coalesce(max(seq), 0) FROM task_logs WHERE row = :row;

-- name: insert_log
INSERT INTO task_logs (row, seq, at, stream, line) VALUES (:row, :seq, :at, :stream, :line);

-- outbox: destination deliveries (store/sqlite/outbox.py) --------------------------------------

-- name: outbox_sources
-- Tasks that just ended, with their function's row (the 7 columns of get_function; NULLs when
-- the function is gone). :rows is a JSON list of task rows.
SELECT t.row, t.tenant, t.id, t.function,
       f.tenant, f.name, f.config, f.code_sha256, f.created_at, f.updated_at, f.paused
FROM tasks t LEFT JOIN functions f ON f.tenant = t.tenant AND f.name = t.function
WHERE t.row IN (SELECT value FROM json_each(:rows));

-- name: insert_delivery
INSERT INTO deliveries (id, row, tenant, task_id, function, destination, status, attempts,
                        next_at, created_at)
VALUES (:id, :row, :tenant, :task_id, :function, :destination, 'pending', 0, :now, :now);

-- name: claim_deliveries
-- Due pending deliveries whose lease is free or expired, oldest due first; each claim is an
-- attempt. RETURNING comes in no particular order: the caller sorts.
UPDATE deliveries SET attempts = attempts + 1, lease_expires_at = :lease_until, node = :node
WHERE id IN (
    SELECT id FROM deliveries
    WHERE status = 'pending' AND next_at <= :now
      AND (lease_expires_at IS NULL OR lease_expires_at <= :now)
    ORDER BY next_at LIMIT :limit)
RETURNING id, row, tenant, task_id, function, destination, status, attempts, next_at,
          created_at, delivered_at, last_error;

-- name: delivery_done
UPDATE deliveries SET status = 'delivered', delivered_at = :now, lease_expires_at = NULL,
                      last_error = NULL
WHERE id = :id AND status = 'pending' AND attempts = :attempt;

-- name: delivery_failed
-- :next_at NULL → dead (out of retries, or it can never succeed).
UPDATE deliveries SET
    status = CASE WHEN :next_at IS NULL THEN 'dead' ELSE 'pending' END,
    next_at = coalesce(:next_at, next_at), lease_expires_at = NULL, last_error = :error
WHERE id = :id AND status = 'pending' AND attempts = :attempt;

-- name: task_deliveries
SELECT id, row, tenant, task_id, function, destination, status, attempts, next_at,
       created_at, delivered_at, last_error
FROM deliveries WHERE row = :row ORDER BY created_at, id;

-- name: task_row
SELECT row FROM tasks WHERE tenant = :tenant AND id = :id;

-- dead letters (deadletters.py) ----------------------------------------------------------------

-- name: insert_dead_letters
-- The tasks of :rows (a JSON list) that ended Failed or Expired, listed in the transaction that
-- ended them; an entry already there stays as it is. `reason` keeps the error's type and
-- message only: the list shows the task's own error, so a purge of the task erases it there.
INSERT INTO dead_letters (row, tenant, function, task_id, status, reason, at)
SELECT row, tenant, function, id, status,
       json_object('type', json_extract(error, '$.type'),
                   'message', json_extract(error, '$.message')),
       coalesce(finished_at, :now)
FROM tasks
WHERE row IN (SELECT value FROM json_each(:rows)) AND status IN ('Failed', 'Expired')
ON CONFLICT (row) DO NOTHING;

-- name: list_dead_letters
-- Newest first: before the cursor (:at, :row), the previous page's last entry.
SELECT d.row, d.task_id, d.function, d.status, coalesce(t.error, d.reason), t.attempt, d.at,
       d.rerun_as, d.rerun_at
FROM dead_letters d JOIN tasks t ON t.row = d.row
WHERE d.tenant = :tenant AND (d.at, d.row) < (:at, :row)
ORDER BY d.at DESC, d.row DESC LIMIT :limit;

-- name: list_function_dead_letters
SELECT d.row, d.task_id, d.function, d.status, coalesce(t.error, d.reason), t.attempt, d.at,
       d.rerun_as, d.rerun_at
FROM dead_letters d JOIN tasks t ON t.row = d.row
WHERE d.tenant = :tenant AND d.function = :function AND (d.at, d.row) < (:at, :row)
ORDER BY d.at DESC, d.row DESC LIMIT :limit;

-- name: dead_letter_of_task
SELECT d.row, d.rerun_as FROM tasks t JOIN dead_letters d ON d.row = t.row
WHERE t.tenant = :tenant AND t.id = :id;

-- name: mark_dead_letter_rerun
UPDATE dead_letters SET rerun_as = :rerun_as, rerun_at = :now
WHERE row = :row AND rerun_as IS NULL;

-- reads --------------------------------------------------------------------------------------

-- name: get_task
-- The 20 task columns, then `attributes` (only a single task's read carries it).
SELECT row, id, tenant, function, status, attempt, max_attempts, priority, payload,
       created_at, run_at, started_at, finished_at, result, error, progress, checkpoint,
       instance_id, node, rerun_of, attributes
FROM tasks WHERE tenant = :tenant AND id = :id;

-- name: task_events
SELECT status, at, detail FROM task_events WHERE row = :row ORDER BY seq;

-- name: task_attempts
SELECT number, started_at, finished_at, instance_id, node, outcome, error, cpu_ms, max_rss_mb,
       instance_started_at
FROM attempts WHERE row = :row ORDER BY number;

-- name: list_tasks
-- Newest first; :before is the previous page's cursor (the largest row when there is none).
SELECT row, id, tenant, function, status, attempt, max_attempts, priority, payload,
       created_at, run_at, started_at, finished_at, result, error, progress, checkpoint,
       instance_id, node, rerun_of
FROM tasks
WHERE tenant = :tenant AND row < :before
  AND (:status IS NULL OR status = :status)
  AND (:since IS NULL OR created_at >= :since)
  AND (:until IS NULL OR created_at < :until)
ORDER BY row DESC LIMIT :limit;

-- name: list_function_tasks
SELECT row, id, tenant, function, status, attempt, max_attempts, priority, payload,
       created_at, run_at, started_at, finished_at, result, error, progress, checkpoint,
       instance_id, node, rerun_of
FROM tasks
WHERE tenant = :tenant AND function = :function AND row < :before
  AND (:status IS NULL OR status = :status)
  AND (:since IS NULL OR created_at >= :since)
  AND (:until IS NULL OR created_at < :until)
ORDER BY row DESC LIMIT :limit;

-- name: read_logs
SELECT seq, at, stream, line FROM task_logs
WHERE row = :row AND seq > :after ORDER BY seq LIMIT :limit;

-- name: find_lost
-- Tasks holding a lease (Running, Stopping, Suspended while running) whose lease expired,
-- plus every one of :node when it is given.
-- (Row subqueries, so each side uses its partial index: tasks_lease_held, tasks_node_held.)
SELECT row, id, tenant, function, status, attempt, max_attempts, node, started_at
FROM tasks
WHERE row IN (
    SELECT row FROM tasks WHERE lease_expires_at <= :now
    UNION ALL
    SELECT row FROM tasks WHERE node = :node AND lease_expires_at IS NOT NULL)
  AND status IN ('Running', 'Stopping', 'Suspended')
ORDER BY row LIMIT :limit;

-- name: next_run_at
-- The earliest run_at of one priority level (a seek of the dispatch index; the caller walks
-- the levels with top_priority_below).
SELECT min(run_at) FROM tasks
WHERE tenant = :tenant AND function = :function AND status = 'Enqueued'
  AND priority = :priority;

-- name: next_retry_at
SELECT min(run_at) FROM tasks WHERE status = 'Retrying';

-- name: count_by_status
SELECT status, count(*) FROM tasks
WHERE tenant = :tenant AND function = :function GROUP BY status;

-- name: queue_stats
-- The waiting tasks (due or not) per function and the oldest one's creation: the covering
-- partial index tasks_expiry (tenant, function, created_at) answers it without the table.
SELECT tenant, function, count(*), min(created_at) FROM tasks
WHERE status IN ('Enqueued', 'Retrying')
GROUP BY tenant, function ORDER BY tenant, function;

-- name: recent_ended_tasks
-- A function's latest ended tasks, newest first (tasks_list_function walked backwards):
-- the window of the latency percentiles and resource sums.
SELECT row, created_at, run_at, started_at, finished_at FROM tasks
WHERE tenant = :tenant AND function = :function AND finished_at IS NOT NULL
ORDER BY row DESC LIMIT :limit;

-- name: recent_attempts
-- The attempts of the tasks `recent_ended_tasks` found (:rows is a JSON list of task rows).
SELECT started_at, finished_at, cpu_ms, max_rss_mb FROM attempts
WHERE row IN (SELECT value FROM json_each(:rows));

-- name: finished_since
-- Ended tasks of a function since :since (tasks_finished, a range seek).
SELECT count(*) FROM tasks
WHERE finished_at >= :since AND tenant = :tenant AND function = :function;

-- name: submitted_since
-- Tasks of a function created since `since`. Rows are numbered in commit order, so these are
-- the rows after the newest one created before it: tasks_list_function walked newest first
-- stops there, and the count is a range of the same index (cost: the last minute's tasks).
SELECT count(*) FROM tasks
WHERE tenant = :tenant AND function = :function
  AND row > coalesce((SELECT row FROM tasks
                      WHERE tenant = :tenant AND function = :function AND created_at < :since
                      ORDER BY row DESC LIMIT 1), 0);

-- name: delayed_at
-- Waiting tasks of a function not due at `now`: Enqueued with a later run_at (a delay) and
-- Retrying waiting out their backoff (tasks_expiry narrows to the function's waiting tasks).
SELECT count(*) FROM tasks
WHERE tenant = :tenant AND function = :function AND status IN ('Enqueued', 'Retrying')
  AND run_at > :now;

-- schedules ------------------------------------------------------------------------------------
-- A schedule is read as the 13 columns of `get_schedule`, in that order (rows.schedule_from_row).

-- name: upsert_schedule
-- A new config replaces the old one; created_at and last_fire_at are kept.
INSERT INTO schedules (tenant, name, function, cron, every_s, timezone, payload, enabled,
                       catch_up, last_fire_at, next_fire_at, created_at, updated_at)
VALUES (:tenant, :name, :function, :cron, :every_s, :timezone, :payload, :enabled,
        :catch_up, NULL, :next_fire_at, :now, :now)
ON CONFLICT (tenant, name) DO UPDATE SET
    function = excluded.function, cron = excluded.cron, every_s = excluded.every_s,
    timezone = excluded.timezone, payload = excluded.payload, enabled = excluded.enabled,
    catch_up = excluded.catch_up, next_fire_at = excluded.next_fire_at,
    updated_at = excluded.updated_at;

-- name: schedule_exists
SELECT 1 FROM schedules WHERE tenant = :tenant AND name = :name;

-- name: get_schedule
SELECT tenant, name, function, cron, every_s, timezone, payload, enabled, catch_up,
       last_fire_at, next_fire_at, created_at, updated_at
FROM schedules WHERE tenant = :tenant AND name = :name;

-- name: list_schedules
SELECT tenant, name, function, cron, every_s, timezone, payload, enabled, catch_up,
       last_fire_at, next_fire_at, created_at, updated_at
FROM schedules WHERE tenant = :tenant ORDER BY name;

-- name: delete_schedule
DELETE FROM schedules WHERE tenant = :tenant AND name = :name RETURNING name;

-- name: due_schedules
-- Enabled schedules due by :now, earliest first (the schedules_due index).
SELECT tenant, name, function, cron, every_s, timezone, payload, enabled, catch_up,
       last_fire_at, next_fire_at, created_at, updated_at
FROM schedules WHERE enabled = 1 AND next_fire_at <= :now
ORDER BY next_fire_at LIMIT :limit;

-- name: next_schedule_at
SELECT MIN(next_fire_at) FROM schedules WHERE enabled = 1;

-- name: fire_schedule
-- A tick's bookkeeping, guarded: the schedule exists and is enabled. Both times only move on,
-- so firing an older tick again (two runners) never moves the schedule back.
UPDATE schedules
SET last_fire_at = MAX(COALESCE(last_fire_at, :tick), :tick),
    next_fire_at = MAX(COALESCE(next_fire_at, :next_fire_at), :next_fire_at)
WHERE tenant = :tenant AND name = :name AND enabled = 1
RETURNING function;

-- name: skip_schedule
-- Move next_fire_at on without firing (missed ticks, a missing function); never back.
UPDATE schedules
SET next_fire_at = MAX(COALESCE(next_fire_at, :next_fire_at), :next_fire_at)
WHERE tenant = :tenant AND name = :name AND enabled = 1;

-- triggers -------------------------------------------------------------------------------------
-- A trigger is read as the 9 columns of `get_trigger`, in that order (triggers.trigger_from_row).

-- name: upsert_trigger
-- A new config replaces the old one; created_at is kept.
INSERT INTO triggers (tenant, name, function, type, settings, enabled, max_queue_depth,
                      created_at, updated_at)
VALUES (:tenant, :name, :function, :type, :settings, :enabled, :max_queue_depth, :now, :now)
ON CONFLICT (tenant, name) DO UPDATE SET
    function = excluded.function, type = excluded.type, settings = excluded.settings,
    enabled = excluded.enabled, max_queue_depth = excluded.max_queue_depth,
    updated_at = excluded.updated_at;

-- name: trigger_exists
SELECT 1 FROM triggers WHERE tenant = :tenant AND name = :name;

-- name: get_trigger
SELECT tenant, name, function, type, settings, enabled, max_queue_depth, created_at, updated_at
FROM triggers WHERE tenant = :tenant AND name = :name;

-- name: list_triggers
SELECT tenant, name, function, type, settings, enabled, max_queue_depth, created_at, updated_at
FROM triggers WHERE tenant = :tenant ORDER BY name;

-- name: all_triggers
SELECT tenant, name, function, type, settings, enabled, max_queue_depth, created_at, updated_at
FROM triggers ORDER BY tenant, name;

-- name: delete_trigger
DELETE FROM triggers WHERE tenant = :tenant AND name = :name RETURNING name;

-- name: queue_depth
-- A function's waiting tasks, due or not (the partial index tasks_expiry answers it).
SELECT count(*) FROM tasks
WHERE tenant = :tenant AND function = :function AND status IN ('Enqueued', 'Retrying');

-- tenants and API keys ---------------------------------------------------------------------------

-- name: create_tenant
INSERT INTO tenants (name, created_at) VALUES (:name, :now)
ON CONFLICT (name) DO NOTHING RETURNING name;

-- name: list_tenants
SELECT name, created_at, max_running, submit_rate, submit_burst FROM tenants ORDER BY name;

-- name: get_tenant
SELECT name, created_at, max_running, submit_rate, submit_burst FROM tenants WHERE name = :name;

-- name: set_tenant_limits
UPDATE tenants SET
    max_running = :max_running, submit_rate = :submit_rate, submit_burst = :submit_burst
WHERE name = :name
RETURNING name, created_at, max_running, submit_rate, submit_burst;

-- name: create_key
INSERT INTO api_keys (id, tenant, hash, name, created_at)
VALUES (:id, :tenant, :hash, :name, :now);

-- name: find_key
SELECT id, tenant, hash, name, created_at, revoked_at FROM api_keys WHERE hash = :hash;

-- name: list_keys
SELECT id, tenant, hash, name, created_at, revoked_at FROM api_keys
WHERE :tenant IS NULL OR tenant = :tenant ORDER BY tenant, created_at, id;

-- name: revoke_key
UPDATE api_keys SET revoked_at = :now WHERE id = :id AND revoked_at IS NULL RETURNING id;

-- name: key_exists
SELECT 1 FROM api_keys WHERE id = :id;

-- name: count_active_keys
SELECT count(*) FROM api_keys WHERE revoked_at IS NULL;

-- name: keep_secret
-- The first value offered for a name stays; every later offer answers it.
INSERT INTO secrets (name, value, created_at) VALUES (:name, :value, :now)
ON CONFLICT (name) DO NOTHING;

-- name: get_secret
SELECT value FROM secrets WHERE name = :name;

-- flow control ---------------------------------------------------------------------------------
-- A claim under a quota reads these in its own write (the one writer serializes them).

-- name: count_running_function
-- The tasks of a function holding an attempt (a lease): the partial index tasks_running.
SELECT count(*) FROM tasks
WHERE tenant = :tenant AND function = :function AND lease_expires_at IS NOT NULL
  AND status IN ('Running', 'Stopping', 'Suspended');

-- name: count_running_tenant
-- INDEXED BY: without statistics the planner would walk every task of the tenant (tasks_list).
SELECT count(*) FROM tasks INDEXED BY tasks_running
WHERE tenant = :tenant AND lease_expires_at IS NOT NULL
  AND status IN ('Running', 'Stopping', 'Suspended');

-- name: running_counts
-- Per function, the tasks holding an attempt (tasks_running answers it without the table).
SELECT tenant, function, count(*) FROM tasks
WHERE lease_expires_at IS NOT NULL AND status IN ('Running', 'Stopping', 'Suspended')
GROUP BY tenant, function ORDER BY tenant, function;

-- name: get_flow_bucket
SELECT tokens, updated_at FROM flow_buckets WHERE tenant = :tenant AND function = :function;

-- name: put_flow_bucket
INSERT INTO flow_buckets (tenant, function, tokens, updated_at)
VALUES (:tenant, :function, :tokens, :updated_at)
ON CONFLICT (tenant, function) DO UPDATE SET
    tokens = excluded.tokens, updated_at = excluded.updated_at;

-- name: create_signing_key
INSERT INTO signing_keys (id, tenant, secret_sealed, name, created_at)
VALUES (:id, :tenant, :secret_sealed, :name, :now);

-- name: find_signing_key
SELECT id, tenant, secret_sealed, name, created_at, revoked_at FROM signing_keys WHERE id = :id;

-- name: list_signing_keys
SELECT id, tenant, secret_sealed, name, created_at, revoked_at FROM signing_keys
WHERE :tenant IS NULL OR tenant = :tenant ORDER BY tenant, created_at, id;

-- name: revoke_signing_key
UPDATE signing_keys SET revoked_at = :now WHERE id = :id AND revoked_at IS NULL RETURNING id;

-- Nodes: each node's heartbeat upserts its row; live ones were seen since a cutoff.

-- name: node_heartbeat
INSERT INTO nodes (name, role, labels, started_at, seen_at)
VALUES (:name, :role, :labels, :started_at, :seen_at)
ON CONFLICT (name) DO UPDATE SET
    role = excluded.role, labels = excluded.labels, started_at = excluded.started_at,
    seen_at = excluded.seen_at;

-- name: forget_node
DELETE FROM nodes WHERE name = :name;

-- name: live_nodes
SELECT name, role, labels, started_at, seen_at FROM nodes WHERE seen_at >= :since ORDER BY name;
