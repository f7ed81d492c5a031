-- 0011: dead letters: tasks of a function with async.on_dead_letter that ended Failed or
-- Expired after all their retries, until rerun (rerun_as) or retention deletes the task.
-- Applied migrations are never edited: change the schema in a new numbered file.

CREATE TABLE dead_letters (
    row bigint PRIMARY KEY REFERENCES tasks (row) ON DELETE CASCADE,
    tenant text NOT NULL,
    function text NOT NULL,
    task_id text NOT NULL,
    status text NOT NULL,
    reason text,
    at double precision NOT NULL,
    rerun_as text,
    rerun_at double precision
);
-- The list is newest first (by when the task ended for good), of a tenant or of one function.
CREATE INDEX dead_letters_list ON dead_letters (tenant, at DESC, row DESC);
CREATE INDEX dead_letters_function ON dead_letters (tenant, function, at DESC, row DESC);
