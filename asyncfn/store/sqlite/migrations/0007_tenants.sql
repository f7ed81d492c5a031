-- 0007: tenants, their API keys (stored as SHA-256 hashes, never the keys), and the node
-- secrets every node of a deployment shares (the key that signs task tokens).
-- Applied migrations are never edited: change the schema in a new numbered file.

CREATE TABLE tenants (
    name TEXT PRIMARY KEY,
    created_at REAL NOT NULL
);
INSERT INTO tenants (name, created_at) VALUES ('default', 0);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL REFERENCES tenants (name),
    hash TEXT NOT NULL UNIQUE,
    name TEXT,
    created_at REAL NOT NULL,
    revoked_at REAL
);
CREATE INDEX api_keys_tenant ON api_keys (tenant, created_at);

CREATE TABLE secrets (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    created_at REAL NOT NULL
);
