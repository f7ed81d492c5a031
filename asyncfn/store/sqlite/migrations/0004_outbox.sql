-- 0004: the destination outbox. Every terminal transition inserts the deliveries its function's
-- async.on_success / async.on_failure ask for, in the same transaction; the deliverer claims
-- them with a lease and marks each delivered or, after its retries, dead.
-- Applied migrations are never edited: change the schema in a new numbered file.

CREATE TABLE deliveries (
    id TEXT PRIMARY KEY,           -- stable across retries: X-Asyncfn-Delivery, chained dedup id
    row INTEGER NOT NULL REFERENCES tasks (row) ON DELETE CASCADE,
    tenant TEXT NOT NULL,
    task_id TEXT NOT NULL,
    function TEXT NOT NULL,
    destination TEXT NOT NULL,     -- JSON: Destination.to_config() (secret included)
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_at REAL NOT NULL,
    lease_expires_at REAL,
    node TEXT,                     -- who holds (or last held) the lease
    last_error TEXT,
    created_at REAL NOT NULL,
    delivered_at REAL,
    CHECK ((delivered_at IS NOT NULL) = (status = 'delivered'))
);

-- Claims: the pending deliveries that are due.
CREATE INDEX deliveries_due ON deliveries (next_at) WHERE status = 'pending';
-- A task's deliveries, for reads (and the cascade on retention).
CREATE INDEX deliveries_row ON deliveries (row);
