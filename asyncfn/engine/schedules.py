"""ScheduleRunner: keeps schedules (timer triggers) and fires their ticks as tasks.

The loop sleeps until the earliest `next_fire_at` (at most IDLE_S), then fires each due
schedule through `Store.fire_schedule` (the task and the bookkeeping in one transaction; the
tick's dedup id makes a second firing of it a no-op) and wakes the dispatcher as the Submitter
does. Ticks that fell before this runner started were missed while no node ran; the schedule's
`catch_up` decides them (`domain.schedules.plan`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable

from asyncfn.domain import schedules
from asyncfn.domain.errors import NotFound
from asyncfn.domain.models import Submission
from asyncfn.domain.schedules import Schedule
from asyncfn.engine.catalog import FunctionCatalog, FunctionKey
from asyncfn.engine.service import Supervisor, wait_for_event
from asyncfn.store.base import Store

log = logging.getLogger("asyncfn.engine.schedules")

BATCH = 100
IDLE_S = 1.0


class ScheduleRunner:
    name = "schedules"

    def __init__(
        self,
        store: Store,
        catalog: FunctionCatalog,
        supervisor: Supervisor,
        notify: Callable[[FunctionKey], None],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._supervisor = supervisor
        self._notify = notify
        self._clock = clock
        self._online_since = clock()
        self._wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._loop is None:
            self._online_since = self._clock()
            self._loop = self._supervisor.spawn("schedules", self._run())

    async def stop(self) -> None:
        await self._supervisor.cancel(self._loop)
        self._loop = None

    # -- the API's side ----------------------------------------------------------------------
    async def put(self, schedule: Schedule) -> tuple[Schedule, bool]:
        """Create or replace a schedule; its next tick is the first one after now. NotFound
        when its function does not exist, InvalidInput naming the field when it cannot run."""
        schedules.validate(schedule)
        self._catalog.require(schedule.tenant, schedule.function)
        now = self._clock()
        next_fire_at = schedules.first_tick(schedule, now) if schedule.enabled else None
        schedule = dataclasses.replace(schedule, next_fire_at=next_fire_at, updated_at=now)
        created = await self._store.put_schedule(schedule)
        stored = await self._store.get_schedule(schedule.tenant, schedule.name)
        assert stored is not None
        self._wake.set()
        return stored, created

    async def get(self, tenant: str, name: str) -> Schedule:
        found = await self._store.get_schedule(tenant, name)
        if found is None:
            raise NotFound("schedule", name)
        return found

    async def of_tenant(self, tenant: str) -> list[Schedule]:
        return await self._store.list_schedules(tenant)

    async def delete(self, tenant: str, name: str) -> None:
        if not await self._store.delete_schedule(tenant, name):
            raise NotFound("schedule", name)

    # -- the loop ----------------------------------------------------------------------------
    async def fire_due(self) -> int:
        """Fire what is due now; answers how many schedules were due (at most BATCH)."""
        now = self._clock()
        due = await self._store.due_schedules(now, BATCH)
        for schedule in due:
            await self._fire(schedule, now)
        return len(due)

    async def _fire(self, schedule: Schedule, now: float) -> None:
        plan = schedules.plan(schedule, now, self._online_since)
        spec = self._catalog.get(schedule.tenant, schedule.function)
        if spec is None or not spec.ready or not plan.ticks:
            if plan.ticks:
                why = "does not exist" if spec is None else "has no code"
                log.warning(
                    "schedule %s: function %s %s; skipping %d tick(s)",
                    schedule.name,
                    schedule.function,
                    why,
                    len(plan.ticks),
                )
            await self._store.skip_schedule(schedule.tenant, schedule.name, plan.next_fire_at)
            return
        created = False
        followers = (*plan.ticks[1:], plan.next_fire_at)
        for tick, following in zip(plan.ticks, followers, strict=True):
            answer = await self._store.fire_schedule(
                schedule.tenant,
                schedule.name,
                tick,
                following,
                Submission(schedule.payload, task_id=schedules.task_id(schedule.name, tick)),
                now,
                spec.async_policy.max_attempts,
                spec.priority,
            )
            if answer is None:  # deleted or disabled meanwhile
                break
            created = created or answer.created
        if created:
            self._notify((schedule.tenant, schedule.function))

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            if await self.fire_due() == BATCH:
                continue
            earliest = await self._store.next_schedule_at()
            now = self._clock()
            delay = IDLE_S if earliest is None else min(IDLE_S, earliest - now)
            if delay > 0:
                await wait_for_event(self._wake, delay)
