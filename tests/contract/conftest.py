"""The `store` fixture: every contract test runs once per store implementation.

Adding an implementation is one entry in `STORES`. PostgreSQL tests skip when
`ASYNCFN_TEST_PG_DSN` is unset and fail when it is set and the server is down. SQLite stores
live in `tmp_path`; each test opens a fresh store and closes it.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from asyncfn.store import open_store
from asyncfn.store.base import Store
from asyncfn.store.sqlite.store import SqliteStore


def sqlite_store(tmp_path: Path) -> Store:
    return SqliteStore(tmp_path / "asyncfn.db")


def postgres_store(tmp_path: Path) -> Store:
    """For the `postgres` entry, once that store exists (a fresh database per test)."""
    dsn = os.environ.get("ASYNCFN_TEST_PG_DSN")
    if not dsn:
        pytest.skip("ASYNCFN_TEST_PG_DSN is unset")
    return open_store(dsn)


STORES: dict[str, Callable[[Path], Store]] = {
    "sqlite": sqlite_store,
}


@pytest.fixture(params=sorted(STORES))
def store_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
async def store(store_kind: str, tmp_path: Path) -> AsyncIterator[Store]:
    opened = STORES[store_kind](tmp_path)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()
