"""The `store` fixture: every contract test runs once per store implementation.

Adding an implementation is one entry in `STORES`: a factory that yields a fresh, unopened
store and cleans up after it. PostgreSQL tests skip when `ASYNCFN_TEST_PG_DSN` is unset and
fail when it is set and the server is down; each runs in its own schema of that database,
dropped afterwards. SQLite stores live in `tmp_path`; each test opens a fresh store and
closes it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
import pytest

from asyncfn.store import open_store
from asyncfn.store.base import Store
from asyncfn.store.sqlite.store import SqliteStore

StoreFactory = Callable[[Path], AbstractAsyncContextManager[Store]]


@asynccontextmanager
async def sqlite_store(tmp_path: Path) -> AsyncIterator[Store]:
    yield SqliteStore(tmp_path / "asyncfn.db")


def postgres_dsn() -> str:
    """The test database's URL; skips the test when ASYNCFN_TEST_PG_DSN is unset."""
    dsn = os.environ.get("ASYNCFN_TEST_PG_DSN")
    if not dsn:
        pytest.skip("ASYNCFN_TEST_PG_DSN is unset")
    return dsn


def with_search_path(dsn: str, schema: str) -> str:
    """`dsn` (a postgresql:// URL) whose connections use `schema` only."""
    parts = urlsplit(dsn)
    query = [*parse_qsl(parts.query), ("options", f"-c search_path={schema}")]
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


@asynccontextmanager
async def postgres_schema() -> AsyncIterator[str]:
    """A fresh schema on the test database, dropped with everything in it afterwards."""
    dsn = postgres_dsn()
    admin = urlunsplit(urlsplit(dsn)._replace(scheme="postgresql"))
    schema = f"t_{uuid.uuid4().hex}"
    async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
        await conn.execute(f'CREATE SCHEMA "{schema}"'.encode())
    try:
        yield with_search_path(dsn, schema)
    finally:
        async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE'.encode())


@asynccontextmanager
async def postgres_store(tmp_path: Path) -> AsyncIterator[Store]:
    """A store on a fresh schema of the test database (a fresh database, in effect)."""
    async with postgres_schema() as url:
        yield open_store(url)


STORES: dict[str, StoreFactory] = {
    "postgres": postgres_store,
    "sqlite": sqlite_store,
}


@pytest.fixture(params=sorted(STORES))
def store_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
async def store(store_kind: str, tmp_path: Path) -> AsyncIterator[Store]:
    async with STORES[store_kind](tmp_path) as made:
        await made.open()
        try:
            yield made
        finally:
            await made.close()
