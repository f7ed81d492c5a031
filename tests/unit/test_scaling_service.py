"""ScalingService's queue reads: a read of the queue depths that is costly (a deep queue) is
reused for a while, so that reading stays a small share of an idle node's CPU."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from asyncfn.domain.models import Submission
from asyncfn.domain.stats import QueueStat
from asyncfn.engine import scaling
from asyncfn.engine.scaling import ScalingService
from asyncfn.engine.service import Supervisor
from asyncfn.store.sqlite.store import SqliteStore

pytestmark = pytest.mark.timeout(20)


class CountedStore(SqliteStore):
    """The real store; its queue reads are counted and take at least `read_s`."""

    read_s = 0.0
    reads = 0

    async def queue_stats(self) -> list[QueueStat]:
        self.reads += 1
        stats = await super().queue_stats()
        await asyncio.sleep(self.read_s)
        return stats


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[CountedStore]:
    s = CountedStore(tmp_path / "asyncfn.db")
    await s.open()
    try:
        yield s
    finally:
        await s.close()


async def queue(store: SqliteStore, n: int) -> None:
    now = time.time()
    items = [Submission(b"{}", run_at=now + 3600) for _ in range(n)]
    await store.submit_many("acme", "f", items, now, 3, 0)


@pytest.mark.parametrize(
    ("read_s", "depth"), [(0.0, 3), (0.02, 3)], ids=["cheap", "slow-but-shallow"]
)
async def test_a_cheap_or_shallow_queue_read_is_made_every_tick(
    store: CountedStore, read_s: float, depth: int
) -> None:
    store.read_s = read_s
    service = ScalingService(store, Supervisor(), dict)
    await queue(store, depth)

    await service.tick()
    await queue(store, 2)
    await service.tick()

    assert store.reads == 2
    assert await service._queue_depths() == {("acme", "f"): depth + 2}


async def test_a_costly_read_of_a_deep_queue_is_reused_for_a_hundred_times_its_cost(
    store: CountedStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.read_s = 0.02  # over CHEAP_READ_S: the next read waits ~2 s
    monkeypatch.setattr(scaling, "DEEP_QUEUE", 3)  # instead of loading 10,000 tasks
    service = ScalingService(store, Supervisor(), dict)
    await queue(store, 3)

    await service.tick()
    await queue(store, 2)
    await service.tick()
    await service.tick()

    assert store.reads == 1
    assert await service._queue_depths() == {("acme", "f"): 3}  # the reused read
    service._queued_until = time.perf_counter() - 1.0  # as if 1 / QUEUE_READ_SHARE x cost passed
    assert await service._queue_depths() == {("acme", "f"): 5}
    assert store.reads == 2
