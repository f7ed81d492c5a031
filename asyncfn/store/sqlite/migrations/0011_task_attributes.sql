-- 0011: a task's attributes, the CloudEvents context (`ce-*`) of a task submitted through
-- POST /v1/functions/{name}/cloudevents, as a JSON object of strings; NULL for other tasks.
-- Applied migrations are never edited: change the schema in a new numbered file.

ALTER TABLE tasks ADD COLUMN attributes TEXT;
