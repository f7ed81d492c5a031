"""Numbered schema migrations: applied once, in order, checksummed, never edited.

A store keeps `migrations/NNNN_name.sql` next to its `queries.sql`. Finding the files and
checking them against what a database recorded in `schema_migrations(version, name, checksum,
applied_at)` is the same for every store (`discover`, `pending`); only applying them is
database-specific (`migrate_sqlite` here; PostgreSQL takes an advisory lock instead of
`BEGIN IMMEDIATE` and runs each file in one `execute`).
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib.resources.abc import Traversable

FILE_NAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")


class MigrationError(Exception):
    """The migrations on disk and the ones a database recorded disagree, or a file is malformed."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def filename(self) -> str:
        return f"{self.version:04d}_{self.name}.sql"

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class AppliedMigration:
    """One row of `schema_migrations`."""

    version: int
    name: str
    checksum: str


def discover(folder: Traversable) -> list[Migration]:
    """The migrations in `folder`, by version; versions must run 1, 2, 3… without a gap."""
    found: list[Migration] = []
    for entry in folder.iterdir():
        if not entry.is_file() or not entry.name.endswith(".sql"):
            continue
        match = FILE_NAME.match(entry.name)
        if match is None:
            raise MigrationError(f"migration file {entry.name!r} is not named NNNN_name.sql")
        sql = entry.read_text(encoding="utf-8")
        found.append(Migration(int(match["version"]), match["name"], sql))
    found.sort(key=lambda m: m.version)
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise MigrationError(
                f"migration {migration.filename}: expected version {expected:04d} "
                "(versions run from 0001 without gaps or repeats)"
            )
    return found


def pending(available: Sequence[Migration], applied: Iterable[AppliedMigration]) -> list[Migration]:
    """The migrations still to apply, after checking the applied ones are unchanged and known."""
    by_version = {m.version: m for m in available}
    done: set[int] = set()
    for record in applied:
        migration = by_version.get(record.version)
        if migration is None:
            raise MigrationError(
                f"the database has migration {record.version:04d}_{record.name}, which this "
                "version of asyncfn does not know (was it opened by a newer one?)"
            )
        if migration.checksum != record.checksum:
            raise MigrationError(
                f"migration {migration.filename} changed after it was applied (checksum "
                f"{record.checksum[:12]}… became {migration.checksum[:12]}…); applied "
                "migrations are never edited: add a new one"
            )
        done.add(record.version)
    return [m for m in available if m.version not in done]


# -- SQLite --------------------------------------------------------------------------------

_SQLITE_TABLE = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    checksum TEXT NOT NULL,
    applied_at REAL NOT NULL
)"""
_SQLITE_APPLIED = "SELECT version, name, checksum FROM schema_migrations ORDER BY version"
_SQLITE_RECORD = (
    "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)"
)


def migrate_sqlite(
    conn: sqlite3.Connection, migrations: Sequence[Migration], now: float
) -> list[Migration]:
    """Apply what is pending in one `BEGIN IMMEDIATE` transaction (all or nothing, and two
    processes opening one file cannot both apply it); answers what was applied.

    `conn` must be in autocommit mode (`isolation_level=None`).
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(_SQLITE_TABLE)
        applied = [AppliedMigration(*row) for row in conn.execute(_SQLITE_APPLIED)]
        todo = pending(migrations, applied)
        for migration in todo:
            for statement in split_sqlite_script(migration.sql, migration.filename):
                conn.execute(statement)
            conn.execute(
                _SQLITE_RECORD, (migration.version, migration.name, migration.checksum, now)
            )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return todo


def split_sqlite_script(script: str, source: str = "<script>") -> list[str]:
    """Split a script into statements SQLite accepts one at a time.

    `Connection.executescript` would commit the surrounding transaction first, so statements
    are cut at the `;` where `sqlite3.complete_statement` says one ends (which understands
    strings, comments and trigger bodies).
    """
    statements: list[str] = []
    current = ""
    for piece in script.split(";")[:-1]:
        current += piece + ";"
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    rest = current + script.rsplit(";", 1)[-1] if ";" in script else script
    if any(line.strip() and not line.strip().startswith("--") for line in rest.splitlines()):
        raise MigrationError(f"{source}: the last statement does not end with ';'")
    return statements
