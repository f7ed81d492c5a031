-- 0005: when the instance actually began each attempt (the claim is attempts.started_at), so a
-- task's timeline shows its cold start.
-- Applied migrations are never edited: change the schema in a new numbered file.

ALTER TABLE attempts ADD COLUMN instance_started_at REAL;
