"""Pools sized on real instances: growth under a burst, shrinking after the idle TTL, a node's
capacity shared by pools (never exceeded; idle instances evicted for another pool), warm targets,
warm instances forked from the pool's fork server."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any

from asyncfn.domain.models import FunctionSpec
from asyncfn.runtime.autoscaler import Autoscaler, Demand
from asyncfn.runtime.capacity import NodeCapacity
from asyncfn.runtime.pool import InstancePool, RunResult

SLOW = """
import os, time

def handler(event, context):
    if event == b"crash":
        os._exit(3)
    time.sleep(float(event or 0))
    return os.getpid()
"""


def make_pool(
    runtime: Any,
    name: str,
    *,
    capacity: NodeCapacity | None = None,
    idle_ttl_s: float = 60.0,
    fork_server: bool = False,
    **spec: Any,
) -> InstancePool:
    """A python pool over SLOW, stopped by the `runtime` fixture after the test."""
    pool = InstancePool(
        FunctionSpec(name=name, handler="handler:handler", **spec),
        runtime.code(SLOW),
        runtime.recorder,
        scratch_dir=runtime.tmp_path / "scratch",
        idle_ttl_s=idle_ttl_s,
        base_env=os.environ,
        capacity=capacity,
        fork_server=fork_server,
    )
    runtime.pools.append(pool)
    return pool


async def sampled(work: Awaitable[list[RunResult]], probe: Callable[[], int]) -> tuple[Any, int]:
    """Run `work` while sampling `probe` every 2 ms; answers its result and the largest sample."""
    task = asyncio.ensure_future(work)
    peak = probe()
    while not task.done():
        peak = max(peak, probe())
        await asyncio.sleep(0.002)
    return await task, max(peak, probe())


def alive(pids: set[int], runtime: Any) -> int:
    return sum(1 for pid in pids if not runtime.gone(pid))


async def burst(runtime: Any, pool: InstancePool, count: int, seconds: str) -> list[RunResult]:
    runs = [pool.run(runtime.assign(seconds.encode())) for _ in range(count)]
    return list(await asyncio.gather(*runs))


async def test_a_pool_grows_to_max_under_a_burst_and_shrinks_to_zero_after_the_ttl(runtime):
    pool = make_pool(runtime, "burst", max_instances=4, idle_ttl_s=0.5)
    results, peak = await sampled(burst(runtime, pool, 20, "0.2"), lambda: len(pool.instances))
    pids = {r.outcome.result for r in results}
    assert peak == 4 and len(pids) == 4
    assert pool.stats().idle == 4 and len(pool.stats().cold_starts_ms) == 4
    await runtime.until(lambda: pool.instances == (), within_s=10)
    for pid in pids:
        assert await runtime.wait_gone(pid)


async def test_a_pool_shrinks_back_to_min_instances_and_keeps_them(runtime):
    pool = make_pool(runtime, "floor", min_instances=1, max_instances=4, idle_ttl_s=0.5)
    await pool.start()
    assert len(pool.instances) == 1
    results, peak = await sampled(burst(runtime, pool, 20, "0.2"), lambda: len(pool.instances))
    assert peak == 4 and len({r.outcome.result for r in results}) == 4
    await runtime.until(lambda: len(pool.instances) == 1, within_s=10)
    await asyncio.sleep(1.5)  # three TTLs more: the floor stays
    (kept,) = pool.instances
    assert kept.state == "ready" and kept.pid is not None and not runtime.gone(kept.pid)


async def test_two_pools_never_exceed_the_node_capacity(runtime):
    capacity = NodeCapacity(max_instances=3, memory_budget_mb=100_000)
    a = make_pool(runtime, "a", capacity=capacity, max_instances=4, idle_ttl_s=0.1)
    b = make_pool(runtime, "b", capacity=capacity, max_instances=4, idle_ttl_s=0.1)
    pids: set[int] = set()

    def live() -> int:
        pids.update(i.pid for p in (a, b) for i in p.instances if i.pid is not None)
        counted = max(capacity.live, len(a.instances) + len(b.instances))
        return max(counted, alive(pids, runtime))

    both = asyncio.gather(burst(runtime, a, 12, "0.1"), burst(runtime, b, 12, "0.1"))
    (ran_a, ran_b), peak = await sampled(both, live)
    assert peak <= 3
    assert all(isinstance(r.outcome.result, int) for r in ran_a + ran_b)
    await runtime.until(lambda: capacity.live == 0, within_s=10)
    assert alive(pids, runtime) == 0


async def test_a_task_for_another_pool_evicts_an_idle_instance_at_the_cap(runtime):
    capacity = NodeCapacity(max_instances=3, memory_budget_mb=100_000)
    a = make_pool(runtime, "a", capacity=capacity, max_instances=4)
    b = make_pool(runtime, "b", capacity=capacity, max_instances=4)
    a_pids = {r.outcome.result for r in await burst(runtime, a, 3, "0.3")}
    assert len(a.instances) == 3 and capacity.live == 3 and a.stats().idle == 3
    assert a.free_slots() == 3  # its idle instances; no room to start more
    assert b.free_slots() == 3  # A's idle instances are reclaimable

    result = await b.run(runtime.assign(b"0"))
    assert isinstance(result.outcome.result, int)
    assert len(a.instances) == 2 and len(b.instances) == 1
    evicted = [pid for pid in a_pids if pid not in {i.pid for i in a.instances}]
    assert len(evicted) == 1 and await runtime.wait_gone(evicted[0])
    assert capacity.live == 3


async def test_accounting_stays_exact_across_crashes_reaping_and_stop(runtime):
    capacity = NodeCapacity(max_instances=2, memory_budget_mb=100_000)
    pool = make_pool(runtime, "crashy", capacity=capacity, max_instances=2, idle_ttl_s=0.2)
    runs = [pool.run(runtime.assign(p)) for p in (b"crash", b"0.1", b"crash", b"0.1", b"0")]
    outcomes = [r.outcome for r in await asyncio.gather(*runs)]
    assert sum(type(o).__name__ == "InstanceExited" for o in outcomes) >= 2
    await runtime.until(lambda: capacity.live == len(pool.instances) == 0, within_s=10)
    await pool.start()
    pool.scale_to(2, "warm for the stop")
    await runtime.until(lambda: capacity.live == 2)
    await pool.stop(grace_s=0.5)
    assert capacity.live == 0 and capacity.memory_reserved_mb == 0


async def test_scale_to_prestarts_warm_instances_and_lowering_it_lets_them_go(runtime):
    pool = make_pool(runtime, "warm", max_instances=4, idle_ttl_s=0.3)
    scaler = Autoscaler(cpu_percent=lambda: 10.0)
    (decision,) = scaler.decide({"warm": pool}, {"warm": Demand(queued=3, running=0)}, now=1.0)
    assert decision.after == 3
    assert pool.scale_to(decision.after, decision.reason, at=decision.at) == 3
    await runtime.until(lambda: [i.state for i in pool.instances] == ["ready"] * 3)
    assert runtime.recorder.started == []  # warm before any task arrived
    await asyncio.sleep(0.9)  # three TTLs: the target keeps them
    warm = {i.instance_id for i in pool.instances}
    assert len(warm) == 3

    result = await pool.run(runtime.assign(b"0"))
    assert result.instance_id in warm and len(pool.instances) == 3

    pool.scale_to(0, "no demand")
    await runtime.until(lambda: pool.instances == (), within_s=5)
    stats = pool.stats()
    assert [(d.before, d.after) for d in stats.decisions] == [(0, 3), (3, 0)]
    assert stats.target == 0 and len(stats.cold_starts_ms) == 3


async def test_warm_instances_fork_from_the_pool_fork_server_within_the_capacity(runtime):
    capacity = NodeCapacity(max_instances=2, memory_budget_mb=100_000)
    pool = make_pool(runtime, "forked", capacity=capacity, max_instances=4, fork_server=True)
    await pool.start()
    assert pool.stats().fork_server == "running"
    assert pool.scale_to(4, "burst expected") == 2  # the node has room for two
    await runtime.until(lambda: [i.state for i in pool.instances] == ["ready"] * 2)
    assert all(i.forked for i in pool.instances) and capacity.live == 2
    stats = pool.stats()
    assert stats.target == 4 and len(stats.cold_starts_ms) == 2
    pids = [i.pid for i in pool.instances]
    results = await burst(runtime, pool, 4, "0.1")
    assert {r.outcome.result for r in results} == set(pids)
    await pool.stop(grace_s=0.5)
    assert capacity.live == 0
    for pid in pids:
        assert pid is not None and await runtime.wait_gone(pid)
    assert runtime.children_of(os.getpid()) == []
