"""Applying the PostgreSQL store's migrations: once, under a transaction-scoped advisory lock,
recorded and checksummed in `schema_migrations` (finding and checking them is migrate.py's)."""

from __future__ import annotations

from collections.abc import Sequence

from asyncfn.store.migrate import AppliedMigration, Migration, pending
from asyncfn.store.postgres.rows import Conn, execute, fetch_all

MIGRATION_LOCK = 0x6173796E63666E
"""The advisory lock key ("asyncfn") every node takes before migrating one database."""

_TABLE = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at double precision NOT NULL
)"""
_APPLIED = "SELECT version, name, checksum FROM schema_migrations ORDER BY version"
_RECORD = (
    "INSERT INTO schema_migrations (version, name, checksum, applied_at)"
    " VALUES (%(version)s, %(name)s, %(checksum)s, %(now)s)"
)


async def migrate_postgres(
    conn: Conn, migrations: Sequence[Migration], now: float
) -> list[Migration]:
    """Apply what is pending in one transaction (all or nothing), after taking the migration
    lock, so two nodes opening one database cannot both apply; answers what was applied.
    Each migration file runs in one `execute` (no parameters, so it may hold many statements).
    """
    async with conn.transaction():
        await execute(conn, "SELECT pg_advisory_xact_lock(%(key)s)", {"key": MIGRATION_LOCK})
        await execute(conn, _TABLE)
        applied = [AppliedMigration(*row) for row in await fetch_all(conn, _APPLIED)]
        todo = pending(migrations, applied)
        for migration in todo:
            await conn.execute(migration.sql.encode())
            record = {
                "version": migration.version,
                "name": migration.name,
                "checksum": migration.checksum,
                "now": now,
            }
            await execute(conn, _RECORD, record)
    return todo
