-- 0002: tenants, their API keys (stored as SHA-256 hashes, never the keys), and the node
-- secrets every node of a deployment shares (the key that signs task tokens).
-- Applied migrations are never edited: change the schema in a new numbered file.

CREATE TABLE tenants (
    name text PRIMARY KEY,
    created_at double precision NOT NULL
);
INSERT INTO tenants (name, created_at) VALUES ('default', 0);

CREATE TABLE api_keys (
    id text PRIMARY KEY,
    tenant text NOT NULL REFERENCES tenants (name),
    hash text NOT NULL UNIQUE,
    name text,
    created_at double precision NOT NULL,
    revoked_at double precision
);
CREATE INDEX api_keys_tenant ON api_keys (tenant, created_at);

CREATE TABLE secrets (
    name text PRIMARY KEY,
    value bytea NOT NULL,
    created_at double precision NOT NULL
);
