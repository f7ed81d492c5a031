-- 0013: concurrency keys. A task's key values, one per limit of its function's `concurrency`
-- (TaskKeys.concurrency, in order); NULL where the function has no such limit.
-- Applied migrations are never edited: change the schema in a new numbered file.

ALTER TABLE tasks ADD COLUMN ckey1 TEXT;
ALTER TABLE tasks ADD COLUMN ckey2 TEXT;
ALTER TABLE tasks ADD COLUMN ckey3 TEXT;
