-- 0009: signing keys, the access key id and secret a tenant's cloud SDKs (boto3, Alibaba's)
-- sign requests with. A signature can only be checked with the secret, so it is kept, but
-- encrypted under the node's ASYNCFN_SIGNING_KEY_SECRET (never in plain text).
-- Applied migrations are never edited: change the schema in a new numbered file.

CREATE TABLE signing_keys (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL REFERENCES tenants (name),
    secret_sealed BLOB NOT NULL,
    name TEXT,
    created_at REAL NOT NULL,
    revoked_at REAL
);
CREATE INDEX signing_keys_tenant ON signing_keys (tenant, created_at);
