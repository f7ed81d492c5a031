-- 0007: the nodes of the deployment, each upserting its row every few seconds (a heartbeat),
-- so the API can tell which live nodes' placement labels match a function's `requires`.
-- `labels` is a JSON object of strings (text, like the other JSON columns). Same as SQLite's
-- 0012.
-- Applied migrations are never edited: change the schema in a new numbered file.

CREATE TABLE nodes (
    name text PRIMARY KEY,
    role text NOT NULL,
    labels text NOT NULL DEFAULT '{}',
    started_at double precision NOT NULL,
    seen_at double precision NOT NULL
);
CREATE INDEX nodes_seen ON nodes (seen_at);
