-- 0014: debounce and throttle. A debounced task keeps its key and when the first task of its
-- run of collapsed submissions came (max_wait_s counts from there); a throttle keeps, per key,
-- the theoretical arrival time of its next task (GCRA).
-- Applied migrations are never edited: change the schema in a new numbered file.

ALTER TABLE tasks ADD COLUMN debounce_key TEXT;
ALTER TABLE tasks ADD COLUMN debounce_first_at REAL;
ALTER TABLE tasks ADD COLUMN throttle_key TEXT;

CREATE TABLE throttle_state (
    tenant TEXT NOT NULL,
    function TEXT NOT NULL,
    key TEXT NOT NULL,
    tat REAL NOT NULL,
    PRIMARY KEY (tenant, function, key)
) WITHOUT ROWID;

-- A submission finds the waiting task of its debounce key (store/sqlite/shaping.py).
CREATE INDEX tasks_debounce ON tasks (tenant, function, debounce_key)
    WHERE debounce_key IS NOT NULL AND status = 'Enqueued';
-- The janitor forgets rows whose next slot has passed (such a row throttles like no row).
CREATE INDEX throttle_state_tat ON throttle_state (tat);
