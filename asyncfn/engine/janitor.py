"""Janitor: tasks whose node is gone (expired lease, or this node restarted) → Retrying or
Failed(NodeLost) (Stopping ones → Stopped; frozen ones stay Suspended, back in the queue on
resume), each with an event naming the lost node; retention: old terminal tasks deleted; and
data minimisation: the ended tasks of functions with `retain_payload` false purged (their
payload, result, checkpoint and logs erased) once their deliveries are settled, within about a
second. The sweep reads the store, so a task whose node crashed right after it ended is purged
all the same."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from asyncfn.domain.models import RetryBackoff
from asyncfn.domain.outcomes import NodeLost, Outcome, Stopped
from asyncfn.domain.states import TaskStatus
from asyncfn.engine.catalog import FunctionCatalog
from asyncfn.engine.completer import Completer
from asyncfn.engine.service import Supervisor
from asyncfn.store.base import LostTask, Store

log = logging.getLogger("asyncfn.engine")

BATCH = 500
PURGE_BATCH = 1_000
PURGE_PAUSE_S = 0.05
PURGE_EVERY_S = 60.0
UNRETAINED_BATCH = 200
UNRETAINED_EVERY_S = 1.0


class Janitor:
    name = "janitor"

    def __init__(
        self,
        store: Store,
        catalog: FunctionCatalog,
        completer: Completer,
        supervisor: Supervisor,
        running_rows: Callable[[], list[int]],
        *,
        node: str,
        interval_s: float,
        retention_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._completer = completer
        self._supervisor = supervisor
        self._running_rows = running_rows
        self._node = node
        self._interval_s = interval_s
        self._retention_s = retention_s
        self._clock = clock
        self._loop: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Recover what this node ran before it restarted, before anything is dispatched."""
        if self._loop is not None:
            return
        recovered = await self.recover(self._node)
        if recovered:
            log.warning("recovered %d tasks interrupted when this node last stopped", recovered)
        self._loop = self._supervisor.spawn("janitor", self._run())

    async def stop(self) -> None:
        await self._supervisor.cancel(self._loop)
        self._loop = None

    async def recover(self, node: str | None) -> int:
        """Hand back lost tasks (of `node` when given, and any with an expired lease)."""
        total = 0
        while True:
            mine = set(self._running_rows())
            lost = [
                t
                for t in await self._store.find_lost(node, self._clock(), BATCH)
                if t.row not in mine
            ]
            if not lost:
                return total
            await asyncio.gather(*(self._hand_back(t, node) for t in lost))
            total += len(lost)
            if len(lost) < BATCH:
                return total

    async def _hand_back(self, task: LostTask, restarted: str | None) -> None:
        reason = "node restarted" if task.node == restarted else "lease expired"
        detail = {"lost_node": task.node, "reason": reason}
        if task.status is TaskStatus.SUSPENDED:
            await self._store.release_lost(task.row, task.attempt, self._clock(), detail)
            return
        spec = self._catalog.get(task.tenant, task.function)
        backoff = spec.async_policy.retry_backoff if spec is not None else RetryBackoff()
        outcome: Outcome = NodeLost(task.node, reason)
        if task.status is TaskStatus.STOPPING:
            outcome = Stopped(duration_ms=0.0)
        await self._completer.apply(
            task.row,
            task.attempt,
            task.max_attempts,
            backoff,
            outcome,
            detail,
            function=task.function,
        )

    async def purge(self) -> int:
        """Delete terminal tasks older than the retention, in bounded batches that yield to
        everything else between them."""
        total = 0
        before = self._clock() - self._retention_s
        while True:
            purged = await self._store.purge_finished(before, PURGE_BATCH)
            total += purged
            if purged < PURGE_BATCH:
                return total
            await asyncio.sleep(PURGE_PAUSE_S)

    async def forget_throttles(self) -> int:
        """Delete the throttle rows of keys idle since their next slot passed, in bounded
        batches: the table keeps one row per key value throttled lately, not ever."""
        total = 0
        while True:
            forgotten = await self._store.forget_throttles(self._clock(), PURGE_BATCH)
            total += forgotten
            if forgotten < PURGE_BATCH:
                return total
            await asyncio.sleep(PURGE_PAUSE_S)

    async def purge_unretained(self) -> int:
        """Purge the ended tasks of the functions with `retain_payload` false whose deliveries
        are settled (a pending delivery still reads the result), in bounded batches."""
        total = 0
        for spec in self._catalog.all():
            if spec.retain_payload:
                continue
            while True:
                now = self._clock()
                purged = await self._store.purge_unretained(
                    spec.tenant, spec.name, now, UNRETAINED_BATCH
                )
                total += purged
                if purged < UNRETAINED_BATCH:
                    break
                await asyncio.sleep(PURGE_PAUSE_S)
        return total

    async def _run(self) -> None:
        next_purge = 0.0
        loop = asyncio.get_running_loop()
        next_recover = loop.time() + self._interval_s
        while True:
            await asyncio.sleep(min(self._interval_s, UNRETAINED_EVERY_S))
            await self.purge_unretained()
            if loop.time() < next_recover:
                continue
            next_recover = loop.time() + self._interval_s
            await self.recover(None)
            if self._clock() >= next_purge:
                purged = await self.purge()
                if purged:
                    log.info("purged %d tasks past the retention period", purged)
                await self.forget_throttles()
                next_purge = self._clock() + PURGE_EVERY_S
