"""PostgreSQL only: two stores (two pools, like two nodes) on one schema submitting the same
debounce key at once leave exactly one task waiting, and share one throttle rate."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import psycopg
import pytest

from asyncfn.domain.models import Debounce, Submission, TaskKeys, Throttle
from asyncfn.domain.states import TaskStatus
from asyncfn.store.postgres.shaping import PgShaping
from asyncfn.store.postgres.store import PostgresStore
from asyncfn.store.postgres.writes import PgWrites
from asyncfn.store.shaping import Shaping
from asyncfn.store.sql import load_queries
from tests.contract.conftest import postgres_schema

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(60)]

T0 = 1_700_000_000.0
TENANT = "acme"
FN = "index"


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    async with postgres_schema() as url:
        yield url


@pytest.fixture
async def nodes(schema: str) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    a, b = PostgresStore.from_url(schema), PostgresStore.from_url(schema)
    try:
        await a.open()
        await b.open()
        yield a, b
    finally:
        await asyncio.gather(a.close(), b.close())


async def test_a_second_node_waits_for_the_first_on_the_same_debounce_key(
    schema: str, nodes: tuple[PostgresStore, PostgresStore]
) -> None:
    """Node A's submission is inside its transaction when node B submits the same key: B waits
    for A's commit, then supersedes A's task, so exactly one task stays waiting."""
    shaping = Shaping(debounce=Debounce("/doc", window_s=5.0, max_wait_s=60.0))
    keys = TaskKeys(debounce="d1")
    queries = load_queries("asyncfn.store.postgres")
    node_a = PgShaping(queries, PgWrites(queries))
    async with await psycopg.AsyncConnection.connect(schema) as conn:
        async with conn.transaction():
            (first,) = await node_a.submit_many(
                conn, TENANT, FN, [Submission(b"a", keys=keys)], T0, 3, 0, shaping
            )
            second = asyncio.create_task(
                nodes[1].submit_many(
                    TENANT, FN, [Submission(b"b", keys=keys)], T0 + 1, 3, 0, shaping=shaping
                )
            )
            await asyncio.sleep(0.3)
            assert not second.done()  # held on the key until A commits
        (answer,) = await second

    counts = await nodes[0].count_by_status(TENANT, FN)
    assert counts.get(TaskStatus.ENQUEUED) == 1 and counts.get(TaskStatus.STOPPED) == 1
    stopped = await nodes[0].get_task(TENANT, first.task_id)
    assert stopped is not None and stopped.status == TaskStatus.STOPPED
    assert answer.run_at == T0 + 6


async def test_many_concurrent_submissions_of_one_key_leave_one_task_waiting(
    nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    shaping = Shaping(debounce=Debounce("/doc", window_s=5.0, max_wait_s=60.0))
    keys = TaskKeys(debounce="d1")

    async def submit(store: PostgresStore, n: int) -> None:
        for i in range(n):
            item = Submission(f"{i}".encode(), keys=keys)
            await store.submit_many(TENANT, FN, [item], T0 + i * 0.001, 3, 0, shaping=shaping)

    await asyncio.gather(*(submit(store, 25) for store in nodes for _ in range(2)))

    counts = await nodes[0].count_by_status(TENANT, FN)
    assert counts.get(TaskStatus.ENQUEUED) == 1
    assert counts.get(TaskStatus.STOPPED) == 99


async def test_two_nodes_share_one_throttle_rate(
    nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    shaping = Shaping(throttle=Throttle("tenant", per_s=10.0, burst=1))
    keys = TaskKeys(throttle="k")

    async def submit(store: PostgresStore) -> list[float]:
        run_ats: list[float] = []
        for _ in range(20):
            (answer,) = await store.submit_many(
                TENANT, FN, [Submission(b"", keys=keys)], T0, 3, 0, shaping=shaping
            )
            assert answer.run_at is not None
            run_ats.append(answer.run_at)
        return run_ats

    found = [at for ats in await asyncio.gather(*(submit(s) for s in nodes)) for at in ats]

    # 40 slots 0.1 s apart, none given twice.
    assert sorted(round(at - T0, 3) for at in found) == [round(i * 0.1, 3) for i in range(40)]
