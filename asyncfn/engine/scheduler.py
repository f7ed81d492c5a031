"""Scheduler: promotes Retrying tasks whose backoff has passed back to Enqueued and wakes the
dispatcher for their functions; expires waiting tasks past their function's max event age.
(Schedules, cron and interval timer triggers, are fired by `schedules.ScheduleRunner`.)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from asyncfn.engine.catalog import FunctionCatalog, FunctionKey
from asyncfn.engine.service import Supervisor, wait_for_event
from asyncfn.metrics import NodeMetrics
from asyncfn.store.base import Store

BATCH = 1_000
IDLE_S = 1.0
EXPIRE_EVERY_S = 1.0


class Scheduler:
    name = "scheduler"

    def __init__(
        self,
        store: Store,
        catalog: FunctionCatalog,
        supervisor: Supervisor,
        notify: Callable[[FunctionKey], None],
        *,
        metrics: NodeMetrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._metrics = metrics or NodeMetrics()
        self._store = store
        self._catalog = catalog
        self._supervisor = supervisor
        self._notify = notify
        self._clock = clock
        self._next_at = 0.0
        self._wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._loop is None:
            self._loop = self._supervisor.spawn("scheduler", self._run())

    async def stop(self) -> None:
        await self._supervisor.cancel(self._loop)
        self._loop = None

    def retry_at(self, at: float) -> None:
        """A task became Retrying until `at`: wake earlier if that is sooner than planned."""
        if at < self._next_at:
            self._next_at = at
            self._wake.set()

    async def expire(self) -> int:
        """End the waiting tasks that are past their function's max event age."""
        total = 0
        now = self._clock()
        for spec in self._catalog.all():
            oldest = now - spec.async_policy.max_event_age_s
            while True:
                count = await self._store.expire(spec.tenant, spec.name, oldest, now, BATCH)
                total += count
                if count:
                    self._metrics.expirations.labels(spec.name).inc(count)
                    self._metrics.finishes.labels(spec.name, "Expired").inc(count)
                if count < BATCH:
                    break
        return total

    async def _run(self) -> None:
        next_expiry = 0.0
        while True:
            now = self._clock()
            if now >= next_expiry:
                await self.expire()
                next_expiry = now + EXPIRE_EVERY_S
            if now >= self._next_at:
                promoted = await self._store.promote_due(now, BATCH)
                for key in set(promoted):
                    self._notify(key)
                if len(promoted) == BATCH:
                    continue
                due = await self._store.next_retry_at()
                self._next_at = min(due if due is not None else now + IDLE_S, now + IDLE_S)
            self._wake.clear()
            delay = self._next_at - self._clock()
            if delay > 0:
                await wait_for_event(self._wake, delay)
