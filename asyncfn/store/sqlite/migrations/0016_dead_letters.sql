-- 0016: dead letters: tasks of a function with async.on_dead_letter that ended Failed or
-- Expired after all their retries, until rerun (rerun_as) or retention deletes the task.
-- Applied migrations are never edited: change the schema in a new numbered file.

CREATE TABLE dead_letters (
    row INTEGER PRIMARY KEY REFERENCES tasks (row) ON DELETE CASCADE,
    tenant TEXT NOT NULL,
    function TEXT NOT NULL,
    task_id TEXT NOT NULL,
    status TEXT NOT NULL,          -- Failed or Expired
    reason TEXT,                   -- JSON: the task's error
    at REAL NOT NULL,
    rerun_as TEXT,                 -- the id of the rerun task, once rerun
    rerun_at REAL
);
-- The list is newest first (by when the task ended for good), of a tenant or of one function.
CREATE INDEX dead_letters_list ON dead_letters (tenant, at DESC, row DESC);
CREATE INDEX dead_letters_function ON dead_letters (tenant, function, at DESC, row DESC);
