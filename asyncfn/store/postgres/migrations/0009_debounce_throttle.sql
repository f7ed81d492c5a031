-- 0009: debounce and throttle. A debounced task keeps its key and when the first task of its
-- run of collapsed submissions came (max_wait_s counts from there); a throttle keeps, per key,
-- the theoretical arrival time of its next task (GCRA).
-- Applied migrations are never edited: change the schema in a new numbered file.

ALTER TABLE tasks ADD COLUMN debounce_key text;
ALTER TABLE tasks ADD COLUMN debounce_first_at double precision;
ALTER TABLE tasks ADD COLUMN throttle_key text;

CREATE TABLE throttle_state (
    tenant text NOT NULL,
    function text NOT NULL,
    key text NOT NULL,
    tat double precision NOT NULL,
    PRIMARY KEY (tenant, function, key)
);

-- A submission finds the waiting task of its debounce key (store/postgres/shaping.py).
CREATE INDEX tasks_debounce ON tasks (tenant, function, debounce_key)
    WHERE debounce_key IS NOT NULL AND status = 'Enqueued';
-- The janitor forgets rows whose next slot has passed (such a row throttles like no row).
CREATE INDEX throttle_state_tat ON throttle_state (tat);
