"""TriggerRunner: keeps one source running per enabled trigger on this node, restarts a failing
one after a backoff (its error becomes the trigger's `last_error`), and answers the API.

The stored triggers are the truth: the runner reconciles what runs with them at once after a
change made here and every RECONCILE_S otherwise, so a change made through another node of a
cluster reaches this one too. Broker sources are consumer groups, so every node may consume.
A runner that was never started (an `api` node's) answers the API but runs no source.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from asyncfn.domain import triggers
from asyncfn.domain.errors import NotFound
from asyncfn.domain.triggers import Trigger
from asyncfn.engine.catalog import FunctionCatalog
from asyncfn.engine.service import Supervisor, wait_for_event
from asyncfn.engine.submitter import Submitter
from asyncfn.engine.triggers import kinds
from asyncfn.engine.triggers.base import SourceContext
from asyncfn.engine.triggers.sink import TriggerSink, TriggerState
from asyncfn.metrics import NodeMetrics
from asyncfn.store.base import Store

log = logging.getLogger("asyncfn.engine.triggers")

RECONCILE_S = 5.0
BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 30.0
HEALTHY_S = 30.0
"""A source that ran this long before failing starts its backoff afresh."""

TriggerKey = tuple[str, str]


@dataclass
class _Consumer:
    trigger: Trigger
    task: asyncio.Task[None]


class TriggerRunner:
    name = "triggers"

    def __init__(
        self,
        store: Store,
        catalog: FunctionCatalog,
        submitter: Submitter,
        supervisor: Supervisor,
        *,
        node: str,
        metrics: NodeMetrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._submitter = submitter
        self._supervisor = supervisor
        self._node = node
        self._metrics = metrics
        self._clock = clock
        self._consumers: dict[TriggerKey, _Consumer] = {}
        self._states: dict[TriggerKey, TriggerState] = {}
        self._reconciling = asyncio.Lock()
        self._wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        self._running = False
        """Sources run on this node (started, not stopped)."""

    async def start(self) -> None:
        if self._loop is None:
            self._running = True
            await self.reconcile()
            self._loop = self._supervisor.spawn("triggers", self._run())

    async def stop(self) -> None:
        self._running = False
        await self._supervisor.cancel(self._loop)
        self._loop = None
        async with self._reconciling:
            for key in list(self._consumers):
                await self._retire(key)

    # -- the API's side ----------------------------------------------------------------------
    async def put(self, trigger: Trigger) -> tuple[Trigger, bool]:
        """Create or replace a trigger and (re)start its source. NotFound when its function
        does not exist, InvalidInput naming the field when its config or settings are wrong."""
        triggers.validate(trigger)
        settings = kinds.normalised(trigger.type, trigger.settings)
        self._catalog.require(trigger.tenant, trigger.function)
        now = self._clock()
        created = await self._store.put_trigger(
            dataclasses.replace(trigger, settings=settings, updated_at=now)
        )
        await self.reconcile()
        return await self.get(trigger.tenant, trigger.name), created

    async def get(self, tenant: str, name: str) -> Trigger:
        found = await self._store.get_trigger(tenant, name)
        if found is None:
            raise NotFound("trigger", name)
        return found

    async def of_tenant(self, tenant: str) -> list[Trigger]:
        return await self._store.list_triggers(tenant)

    async def delete(self, tenant: str, name: str) -> None:
        if not await self._store.delete_trigger(tenant, name):
            raise NotFound("trigger", name)
        await self.reconcile()

    def state(self, trigger: Trigger) -> TriggerState:
        """The trigger's live figures on this node (`disabled` when it does not run here)."""
        found = self._states.get((trigger.tenant, trigger.name))
        if found is None or not trigger.enabled:
            return TriggerState(phase="disabled")
        return found

    # -- keeping sources running ---------------------------------------------------------------
    async def reconcile(self) -> None:
        """Start the sources of enabled triggers, stop those of deleted or disabled ones, and
        restart those whose config changed. A runner not started runs none."""
        if not self._running:
            return
        async with self._reconciling:
            wanted = {
                (t.tenant, t.name): t for t in await self._store.list_triggers(None) if t.enabled
            }
            for key, consumer in list(self._consumers.items()):
                if wanted.get(key) != consumer.trigger:
                    await self._retire(key)
            for key, trigger in wanted.items():
                if key not in self._consumers:
                    self._launch(key, trigger)

    def _launch(self, key: TriggerKey, trigger: Trigger) -> None:
        state = TriggerState()
        self._states[key] = state
        name = f"trigger:{trigger.tenant}/{trigger.name}"
        task = self._supervisor.spawn(name, self._consume(trigger, state))
        self._consumers[key] = _Consumer(trigger, task)

    async def _retire(self, key: TriggerKey) -> None:
        consumer = self._consumers.pop(key)
        self._states.pop(key, None)
        await self._supervisor.cancel(consumer.task)

    async def _consume(self, trigger: Trigger, state: TriggerState) -> None:
        sink = TriggerSink(
            trigger, self._store, self._submitter, state, metrics=self._metrics, clock=self._clock
        )
        context = SourceContext(trigger.name, trigger.tenant, trigger.function, self._node)
        failures = 0
        while True:
            state.phase = "starting"
            started = self._clock()
            try:
                kind = kinds.kind(trigger.type)
                source = kind.make(kinds.settings_of(trigger.type, trigger.settings), context)
                await source.run(sink)
                error = "the source stopped by itself"
            except Exception as exc:  # a source's failure is its trigger's, never the node's
                error = f"{type(exc).__name__}: {exc}"
            now = self._clock()
            failures = 1 if now - started >= HEALTHY_S else failures + 1
            delay = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** (failures - 1))
            state.phase = "failing"
            state.last_error, state.last_error_at = error, now
            state.restarts += 1
            state.retry_at = now + delay
            self._metrics.trigger_errors.labels(trigger.name).inc()
            log.warning("trigger %s: %s; restarting in %.1f s", trigger.name, error, delay)
            await asyncio.sleep(delay)

    async def _run(self) -> None:
        while True:
            await wait_for_event(self._wake, RECONCILE_S)
            self._wake.clear()
            await self.reconcile()
