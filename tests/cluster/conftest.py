"""Fixtures of the cluster suite: a fresh PostgreSQL database per test (skipped when
ASYNCFN_TEST_PG_DSN is unset) and a `Cluster` of real node processes on it, stopped after."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.cluster import Cluster
from tests.e2e.pgdb import fresh_database


@pytest.fixture
def store_url() -> Iterator[str]:
    with fresh_database("asyncfn_cluster") as url:
        yield url


@pytest.fixture
def cluster(tmp_path: Path, store_url: str) -> Iterator[Cluster]:
    made = Cluster(tmp_path, store_url)
    try:
        yield made
    finally:
        made.stop()
