"""The only shared state: SQL and transactions, no policy.

    base.py          the Store protocol: one method per transition, plus the reads
    protocols/       the protocol by area (functions, transitions, reads, outbox, ...)
    records.py       the records the protocol's methods take and answer
    sql.py           named statements loaded from a store's queries.sql
    migrate.py       numbered, checksummed migrations, applied once
    group_commit.py  GroupCommitter: many callers' writes, one transaction
    sqlite/          SqliteStore: one node, one file (WAL, synchronous=FULL)
    postgres/        PostgresStore: many nodes, one database (SKIP LOCKED claims, NOTIFY)

`open_store(url)` picks the implementation from a store URL; the caller then awaits `open()`.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from asyncfn.store.base import Store
from asyncfn.store.postgres.store import PostgresStore
from asyncfn.store.sqlite.store import SqliteStore

__all__ = ["Store", "StoreUrlError", "open_store"]


class StoreUrlError(ValueError):
    """A store URL this version cannot open."""


def open_store(url: str, *, group_commit: bool = True) -> Store:
    """The store a URL names, not yet opened: `sqlite:///abs/path.db` (an absolute path;
    `sqlite:////abs/path.db` is read the same way), or `postgresql://user@host/db` (also
    `postgres://` and `postgresql+psycopg://`; libpq query parameters pass through, and
    `pool_min` / `pool_max` size the connection pool, 2 and 10 by default). `group_commit`
    False commits each SQLite write alone (the benchmark's baseline); PostgreSQL ignores it."""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "sqlite":
        return SqliteStore(_sqlite_path(url), inline=not group_commit)
    if scheme in {"postgres", "postgresql", "postgresql+psycopg"}:
        try:
            return PostgresStore.from_url(url)
        except ValueError as exc:
            raise StoreUrlError(f"{url!r}: {exc}") from exc
    raise StoreUrlError(
        f"unknown store URL {url!r}: expected sqlite:///abs/path.db or postgresql://host/db"
    )


def _sqlite_path(url: str) -> Path:
    parts = urlsplit(url)
    if parts.netloc or parts.query or parts.fragment:
        raise StoreUrlError(
            f"{url!r}: a SQLite URL is sqlite:///abs/path.db, with no host or query"
        )
    if not parts.path.startswith("/") or parts.path.strip("/") in {"", ":memory:"}:
        raise StoreUrlError(f"{url!r}: a SQLite store needs an absolute file path")
    return Path("/" + parts.path.lstrip("/"))
