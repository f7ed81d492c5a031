"""PostgreSQL only: several nodes on one database. Two stores (two pools, like two nodes) on one
fresh schema never claim a task twice, agree on a task id submitted by both at once, and wake
each other's dispatchers through LISTEN/NOTIFY."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from asyncfn.domain.models import Submission
from asyncfn.store.postgres.store import PostgresStore
from tests.contract.conftest import postgres_schema

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(60)]

T0 = 1_700_000_000.0
TENANT = "acme"
FN = "resize"


@pytest.fixture
async def nodes() -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    """Two stores on one schema, opened at once (so the migration is also raced)."""
    async with postgres_schema() as url:
        a, b = PostgresStore.from_url(url), PostgresStore.from_url(url)
        try:
            await asyncio.gather(a.open(), b.open())
            yield a, b
        finally:
            await asyncio.gather(a.close(), b.close())


async def test_two_nodes_claim_every_task_exactly_once(
    nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = nodes
    total = 2_000
    items = [Submission(b"x") for _ in range(total)]
    for start in range(0, total, 500):
        await a.submit_many(TENANT, FN, items[start : start + 500], T0, 3, 0)

    async def drain(store: PostgresStore, node: str) -> list[int]:
        rows: list[int] = []
        while True:
            claimed = await store.claim_ready(TENANT, FN, node, 25, T0 + 1, T0 + 60)
            if not claimed:
                return rows
            rows += [c.row for c in claimed]

    workers = [
        drain(store, f"{name}-{i}") for i in range(4) for name, store in (("a", a), ("b", b))
    ]
    claimed = [row for rows in await asyncio.gather(*workers) for row in rows]

    assert len(claimed) == total
    assert len(set(claimed)) == total
    counts = await a.count_by_status(TENANT, FN)
    assert counts[next(s for s in counts if s.value == "Running")] == total


async def test_the_same_task_id_submitted_by_two_nodes_at_once_is_one_task(
    nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = nodes
    for i in range(20):
        item = [Submission(b"x", task_id=f"dup-{i}")]
        first, second = await asyncio.gather(
            a.submit_many(TENANT, FN, item, T0, 3, 0), b.submit_many(TENANT, FN, item, T0, 3, 0)
        )
        assert sorted([first[0].created, second[0].created]) == [False, True]
        assert first[0].row == second[0].row is not None
    assert await a.queue_depth(TENANT, FN) == 20


async def test_a_submit_on_one_node_wakes_the_other(
    nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = nodes
    heard: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    await b.listen_ready(lambda tenant, function: heard.put_nowait((tenant, function)))

    await a.submit_many(TENANT, FN, [Submission(b"x")], T0, 3, 0)

    assert await asyncio.wait_for(heard.get(), 5) == (TENANT, FN)


async def test_a_delayed_submit_wakes_nobody(
    nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = nodes
    heard: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    await b.listen_ready(lambda tenant, function: heard.put_nowait((tenant, function)))

    await a.submit_many(TENANT, FN, [Submission(b"x", run_at=T0 + 3600)], T0, 3, 0)
    await a.submit_many(TENANT, "other", [Submission(b"x")], T0, 3, 0)

    assert await asyncio.wait_for(heard.get(), 5) == (TENANT, "other")
