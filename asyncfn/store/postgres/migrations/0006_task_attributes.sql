-- 0006: a task's attributes, the CloudEvents context (`ce-*`) of a task submitted through
-- POST /v1/functions/{name}/cloudevents, as a JSON object of strings (text, like the other JSON
-- columns); NULL for other tasks. Same as SQLite's 0011.

ALTER TABLE tasks ADD COLUMN attributes text;
