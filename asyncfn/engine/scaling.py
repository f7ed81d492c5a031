"""ScalingService: every `interval_s`, reads queue depths from the store and running attempts from
the pools, asks the `Autoscaler` for targets and applies them to the pools (`scale_to`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping

from asyncfn.engine.catalog import FunctionKey
from asyncfn.engine.service import Supervisor
from asyncfn.runtime.autoscaler import Autoscaler, Demand, ScaleDecision
from asyncfn.runtime.capacity import NodeCapacity
from asyncfn.runtime.pool import InstancePool
from asyncfn.store.base import Store

INTERVAL_S_DEFAULT = 0.5
QUEUE_READ_SHARE = 0.01
"""At most this share of the time goes to reading the depths of a deep queue: a read that found
DEEP_QUEUE or more waiting tasks and took longer than CHEAP_READ_S is reused for 1 / share
times as long (it counts the waiting tasks: ~12 ms for 100,000 delayed tasks here). A shallow
queue is read every tick, however long a busy machine makes the read wait."""
CHEAP_READ_S = 0.005
DEEP_QUEUE = 10_000


class ScalingService:
    """Sizes the node's pools. Queue depths come from `Store.queue_stats` (one cheap read for
    every function; it counts delayed and backing-off tasks too, so a pool may be kept warm for
    work that is not due yet), reused while a costly read would exceed QUEUE_READ_SHARE of
    the time. Between ticks, pools still start instances on demand."""

    name = "scaling"

    def __init__(
        self,
        store: Store,
        supervisor: Supervisor,
        pools: Callable[[], Mapping[FunctionKey, InstancePool]],
        *,
        capacity: NodeCapacity | None = None,
        interval_s: float = INTERVAL_S_DEFAULT,
        autoscaler: Autoscaler | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._supervisor = supervisor
        self._pools = pools
        self._interval_s = interval_s
        self._autoscaler = autoscaler or Autoscaler(capacity)
        self._clock = clock
        self._loop: asyncio.Task[None] | None = None
        self._queued: dict[FunctionKey, int] = {}
        self._queued_until = 0.0
        """perf_counter time before which the last queue read is reused."""

    async def start(self) -> None:
        if self._loop is None:
            self._loop = self._supervisor.spawn("scaling", self._run())

    async def stop(self) -> None:
        await self._supervisor.cancel(self._loop)
        self._loop = None

    def decisions(self, key: FunctionKey) -> tuple[ScaleDecision, ...]:
        """The last target changes of `key`'s pool, oldest first (for its stats)."""
        return self._autoscaler.decisions(key)

    async def tick(self) -> list[ScaleDecision]:
        """One round: decide every pool's target, apply it, and top up the pools' warm
        instances where the node has room again. Answers the changes."""
        queued = await self._queue_depths()
        pools = dict(self._pools())
        demand = {key: Demand(queued.get(key, 0), pool.busy) for key, pool in pools.items()}
        changes = self._autoscaler.decide(pools, demand, self._clock())
        changed = {(d.tenant, d.function): d for d in changes}
        for key, pool in pools.items():
            decision = changed.get(key)
            if decision is not None:
                pool.scale_to(decision.after, decision.reason, at=decision.at)
            else:
                pool.warm_up()
        return changes

    async def _queue_depths(self) -> dict[FunctionKey, int]:
        started = time.perf_counter()
        if started < self._queued_until:
            return self._queued
        stats = await self._store.queue_stats()
        self._queued = {(q.tenant, q.function): q.queued for q in stats}
        took = time.perf_counter() - started
        if took > CHEAP_READ_S and sum(self._queued.values()) >= DEEP_QUEUE:
            self._queued_until = started + took / QUEUE_READ_SHARE
        return self._queued

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            await self.tick()
