-- 0012: the nodes of the deployment, each upserting its row every few seconds (a heartbeat),
-- so the API can tell which live nodes' placement labels match a function's `requires`.
-- `labels` is a JSON object of strings. Same as PostgreSQL's 0007.
-- Applied migrations are never edited: change the schema in a new numbered file.

CREATE TABLE nodes (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    labels TEXT NOT NULL DEFAULT '{}',
    started_at REAL NOT NULL,
    seen_at REAL NOT NULL
);
CREATE INDEX nodes_seen ON nodes (seen_at);
