-- 0006: triggers (event sources): a broker consumer or a watched folder that submits tasks.
-- Applied migrations are never edited: change the schema in a new numbered file.

-- settings is the source type's own JSON object, validated by the engine before it is stored.
CREATE TABLE triggers (
    tenant TEXT NOT NULL,
    name TEXT NOT NULL,
    function TEXT NOT NULL,
    type TEXT NOT NULL,
    settings TEXT NOT NULL,
    enabled INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    max_queue_depth INTEGER NOT NULL CHECK (max_queue_depth >= 1),
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (tenant, name)
);
