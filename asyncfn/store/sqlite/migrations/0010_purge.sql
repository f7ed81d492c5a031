-- 0010: purge and data minimisation. A purged task keeps its row, status and events, but its
-- payload, result, checkpoint, traceback, progress message and logs are erased (purge_task);
-- purged_at says when. Functions with retain_payload false are swept by the janitor.
-- Applied migrations are never edited: change the schema in a new numbered file.

ALTER TABLE tasks ADD COLUMN purged_at REAL;
-- The janitor's sweep: ended tasks not purged yet, per function (the retain_payload: false
-- functions purge theirs, so for them this stays small).
CREATE INDEX tasks_unpurged ON tasks (tenant, function, row)
    WHERE finished_at IS NOT NULL AND purged_at IS NULL;
