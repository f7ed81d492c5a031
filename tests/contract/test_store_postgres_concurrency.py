"""PostgreSQL only: several nodes on one database. Two stores (two pools, like two nodes) on one
fresh schema never claim a task twice, agree on a task id submitted by both at once and keep
flow-control quotas between them (what they tell each other: test_store_postgres_feed.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from asyncfn.domain.flow import ClaimQuota
from asyncfn.domain.models import Submission
from asyncfn.domain.states import TaskStatus
from asyncfn.store.base import Finish
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


# -- flow control across nodes ----------------------------------------------------------------


async def test_a_function_cap_holds_across_concurrent_claimers(
    nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    """8 claimers on two nodes, 20 rounds each, claim and finish at once: the tasks holding an
    attempt never exceed the cap, counted both from the claims' answers and in the database."""
    a, b = nodes
    await a.submit_many(TENANT, FN, [Submission(b"x") for _ in range(400)], T0, 3, 0)
    quota = ClaimQuota(function_cap=5)
    held: set[int] = set()
    peak = claimed_total = 0

    async def claimer(store: PostgresStore, node: str, seed: int) -> None:
        nonlocal peak, claimed_total
        for round_ in range(20):
            limit = 1 + (seed + round_) % 3
            claim = await store.claim_ready(TENANT, FN, node, limit, T0 + 1, T0 + 60, 0.0, quota)
            held.update(t.row for t in claim)
            peak = max(peak, len(held))
            claimed_total += len(claim)
            assert len(held) <= 5
            assert (await store.running_counts()).get((TENANT, FN), 0) <= 5
            await asyncio.sleep(0.002 * (1 + round_ % 3))
            held.difference_update(t.row for t in claim)  # before the finish commits
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
    assert claimed_total > 20
    assert await a.running_counts() == {}


async def test_tenant_and_function_caps_hold_together_without_deadlock(
    nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    """Claimers of two functions of one tenant, under both caps (the tenant's lock then the
    function's): neither cap is ever exceeded and nobody waits forever."""
    a, b = nodes
    for function in ("f1", "f2"):
        await a.submit_many(TENANT, function, [Submission(b"x") for _ in range(200)], T0, 3, 0)
    quota = ClaimQuota(function_cap=3, tenant_cap=4)
    held: dict[str, set[int]] = {"f1": set(), "f2": set()}

    async def claimer(store: PostgresStore, node: str, function: str) -> None:
        for round_ in range(20):
            claim = await store.claim_ready(TENANT, function, node, 2, T0 + 1, T0 + 60, 0.0, quota)
            held[function].update(t.row for t in claim)
            assert len(held[function]) <= 3
            assert len(held["f1"]) + len(held["f2"]) <= 4
            await asyncio.sleep(0.001 * (round_ % 2))
            held[function].difference_update(t.row for t in claim)
            ends = [Finish(t.row, t.attempt, TaskStatus.SUCCEEDED, T0 + 2) for t in claim]
            assert all(await store.finish(ends))

    claimers = [
        claimer(store, f"{name}-{i}", function)
        for i in range(2)
        for name, store in (("a", a), ("b", b))
        for function in ("f1", "f2")
    ]
    await asyncio.wait_for(asyncio.gather(*claimers), 30)


async def test_a_rate_holds_across_concurrent_claimers(
    nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    """8 claimers on two nodes with clocks a little apart: what they claim in all never exceeds
    the bucket's burst plus the rate over the time they span."""
    a, b = nodes
    await a.submit_many(TENANT, FN, [Submission(b"x") for _ in range(1_000)], T0, 3, 0)
    rate, burst = 50.0, 5
    quota = ClaimQuota(rate=rate, burst=burst)
    times: list[float] = []
    claimed_total = 0

    async def claimer(store: PostgresStore, node: str, skew: float) -> None:
        nonlocal claimed_total
        for round_ in range(20):
            now = T0 + 1 + round_ * 0.01 + skew
            times.append(now)
            claim = await store.claim_ready(TENANT, FN, node, 5, now, now + 60, 0.0, quota)
            claimed_total += len(claim)
            if len(claim) < 5:
                assert claim.capped and claim.retry_at is not None

    await asyncio.gather(
        *(
            claimer(store, f"{name}-{i}", (i * 2 + (name == "b")) * 0.001)
            for i in range(4)
            for name, store in (("a", a), ("b", b))
        )
    )
    bound = burst + rate * (max(times) - min(times))
    assert claimed_total <= bound + 1e-6
    assert claimed_total >= bound - 2  # the bucket, not the claimers, bounded them
