"""PostgreSQL only: concurrency keys across nodes. Claimers on two stores (two pools, like two
nodes) on one fresh schema, claiming and finishing at once, never run more tasks of a key value
than its limit: a keyed claim takes the function's advisory lock (store/postgres/flow.py)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from asyncfn.domain.flow import ClaimQuota
from asyncfn.domain.models import ConcurrencyLimit, Submission, TaskKeys
from asyncfn.domain.states import TaskStatus
from asyncfn.store.base import Finish
from asyncfn.store.postgres.store import PostgresStore
from tests.contract.conftest import postgres_schema

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(60)]

T0 = 1_700_000_000.0
TENANT = "acme"
FN = "resize"
VALUES = ("a", "b", "c", "d", "e")
LIMIT = 2


@pytest.fixture
async def nodes() -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    async with postgres_schema() as url:
        a, b = PostgresStore.from_url(url), PostgresStore.from_url(url)
        try:
            await asyncio.gather(a.open(), b.open())
            yield a, b
        finally:
            await asyncio.gather(a.close(), b.close())


async def test_a_key_limit_holds_across_concurrent_claimers(
    nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    """8 claimers on two nodes, 20 rounds each: the tasks of one value holding an attempt never
    exceed its limit, counted from the claims' answers; and every value got its turn."""
    a, b = nodes
    items = [
        Submission(b"{}", keys=TaskKeys(concurrency=(VALUES[i % len(VALUES)],))) for i in range(300)
    ]
    await a.submit_many(TENANT, FN, items, T0, 3, 0)
    quota = ClaimQuota(keys=(ConcurrencyLimit("/customer_id", LIMIT),))
    held: Counter[str] = Counter()
    served: Counter[str] = Counter()
    peak = 0

    async def claimer(store: PostgresStore, node: str, seed: int) -> None:
        nonlocal peak
        for round_ in range(20):
            count = 1 + (seed + round_) % 3
            claim = await store.claim_ready(TENANT, FN, node, count, T0 + 1, T0 + 60, 0.0, quota)
            values = [VALUES[(t.row - 1) % len(VALUES)] for t in claim]
            held.update(values)
            served.update(values)
            peak = max(peak, sum(held.values()))
            assert all(n <= LIMIT for n in held.values()), held
            await asyncio.sleep(0.002 * (1 + round_ % 3))
            held.subtract(values)  # before the finish commits
            ends = [Finish(t.row, t.attempt, TaskStatus.SUCCEEDED, T0 + 2) for t in claim]
            assert all(await store.finish(ends))

    await asyncio.gather(
        *(
            claimer(store, f"{name}-{i}", i)
            for i in range(4)
            for name, store in (("a", a), ("b", b))
        )
    )
    assert peak >= 3  # the claimers did overlap
    assert set(served) == set(VALUES)
    assert await a.running_counts() == {}
