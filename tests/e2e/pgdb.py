"""A fresh PostgreSQL database for tests of real node processes, created on the server that
`ASYNCFN_TEST_PG_DSN` names and dropped afterwards (the test skips when the variable is unset)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest


def server_dsn() -> str:
    """ASYNCFN_TEST_PG_DSN as a plain postgresql:// URL; skips the test when it is unset."""
    dsn = os.environ.get("ASYNCFN_TEST_PG_DSN")
    if not dsn:
        pytest.skip("ASYNCFN_TEST_PG_DSN is unset")
    return urlunsplit(urlsplit(dsn)._replace(scheme="postgresql"))


@contextmanager
def fresh_database(prefix: str = "asyncfn_e2e") -> Iterator[str]:
    """The URL of a new, empty database on the test server; dropped (connections and all) after."""
    admin = server_dsn()
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"'.encode())
    try:
        yield urlunsplit(urlsplit(admin)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())
