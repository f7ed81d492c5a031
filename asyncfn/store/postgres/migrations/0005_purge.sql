-- 0005: purge and data minimisation. A purged task keeps its row, status and events, but its
-- payload, result, checkpoint, traceback, progress message and logs are erased (purge_task);
-- purged_at says when. Functions with retain_payload false are swept by the janitor.
-- Old row versions stay in the table files until VACUUM (autovacuum) reclaims them.
-- Applied migrations are never edited: change the schema in a new numbered file.

ALTER TABLE tasks ADD COLUMN purged_at double precision;
-- The janitor's sweep: ended tasks not purged yet, per function.
CREATE INDEX tasks_unpurged ON tasks (tenant, function, row)
    WHERE finished_at IS NOT NULL AND purged_at IS NULL;
