"""Dispatcher: claims ready tasks for functions with free instance slots and runs them on pools.

It is woken in-process when a submission commits (no polling on the hot path), by timers for
delayed tasks, when a slot frees, and by a slow sweep that catches anything else.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from asyncfn.domain.flow import Claim
from asyncfn.domain.models import ClaimedTask, FunctionSpec
from asyncfn.domain.outcomes import NodeLost, Stopped, Succeeded
from asyncfn.domain.placement import satisfies
from asyncfn.engine.catalog import FunctionCatalog, FunctionKey
from asyncfn.engine.completer import Completer
from asyncfn.engine.flow import FlowControl
from asyncfn.engine.service import Supervisor, background, wait_for_event
from asyncfn.engine.slots import PoolSlot, fair_grants
from asyncfn.metrics import NodeMetrics
from asyncfn.runtime.bundles import BundleCache
from asyncfn.runtime.capacity import NodeCapacity
from asyncfn.runtime.pool import IDLE_TTL_S_DEFAULT, Assignment, InstancePool, RuntimeListener
from asyncfn.runtime.process import InstanceLimits
from asyncfn.store.base import Store
from asyncfn.store.feed import ClusterFeed

log = logging.getLogger("asyncfn.engine")

SWEEP_S = 1.0


KeyLimits = Callable[[str, Claim], None]
"""Told of a claim that ended tasks at a concurrency-key limit or asks running ones to stop
(`Claim.stopped`, `Claim.preempt`): TaskControl.key_limits."""

Credentials = Callable[[ClaimedTask, float], tuple[str | None, str | None]]
"""For a claimed task and its attempt's deadline: the API's URL and a task token for the
handler's `context.client` (None, None: the handler gets none)."""


class Dispatcher:
    name = "dispatcher"

    def __init__(
        self,
        store: Store,
        catalog: FunctionCatalog,
        bundles: BundleCache,
        completer: Completer,
        listener: RuntimeListener,
        supervisor: Supervisor,
        *,
        node: str,
        lease_s: float,
        scratch_dir: Path,
        instance_env: Mapping[str, str],
        instance_limits: InstanceLimits | None = None,
        shutdown_grace_s: float = 5.0,
        metrics: NodeMetrics | None = None,
        credentials: Credentials | None = None,
        flow: FlowControl | None = None,
        capacity: NodeCapacity | None = None,
        idle_ttl_s: float = IDLE_TTL_S_DEFAULT,
        fork_server: bool = False,
        labels: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._metrics = metrics or NodeMetrics()
        self._credentials = credentials
        self._flow = flow
        self._capacity = capacity
        self._idle_ttl_s = idle_ttl_s
        self._fork_server = fork_server
        self._labels = dict(labels or {})
        self._store = store
        self._catalog = catalog
        self._bundles = bundles
        self._completer = completer
        self._listener = listener
        self._supervisor = supervisor
        self._node = node
        self._lease_s = lease_s
        self._scratch_dir = scratch_dir
        self._instance_env = instance_env
        self._instance_limits = instance_limits
        self._grace_s = shutdown_grace_s
        self._clock = clock
        self._slots: dict[FunctionKey, PoolSlot] = {}
        self._retired: set[PoolSlot] = set()
        self._dirty: set[FunctionKey] = set()
        self._timers: dict[FunctionKey, float] = {}
        self._wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        self._runs: set[asyncio.Task[None]] = set()
        self._rebuilds: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._pools_stopping = False
        self._stop_requested: set[int] = set()
        self._key_limits: KeyLimits | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        if self._loop is not None:
            return
        self._catalog.subscribe(self._function_changed)
        if self._capacity is not None:
            self._capacity.on_room_freed(self._room_freed)
        for spec in self._catalog.all():
            await self._build_slot(spec)
        for key in self._slots:
            at = await self._store.next_run_at(*key)
            if at is not None:
                self._timers[key] = at
        self._loop = self._supervisor.spawn("dispatcher", self._run())

    async def stop(self) -> None:
        """Stop claiming, give running attempts `shutdown_grace_s` to end, then stop the pools;
        attempts cut short are handed back (Retrying) as NodeLost by their run tasks."""
        self._stopping = True
        await self._supervisor.cancel(self._loop)
        self._loop = None
        for task in list(self._rebuilds):
            await self._supervisor.cancel(task)
        if self._runs:
            await asyncio.wait(list(self._runs), timeout=self._grace_s)
        self._pools_stopping = True
        slots = [*self._slots.values(), *self._retired]
        await asyncio.gather(*(s.pool.stop() for s in slots), return_exceptions=True)
        if self._runs:
            await asyncio.gather(*list(self._runs), return_exceptions=True)
        self._slots.clear()
        self._retired.clear()

    # -- signals from other services ---------------------------------------------------------
    def notify(self, key: FunctionKey, run_at: float | None = None) -> None:
        """New tasks were committed for `key`; `run_at` when they are not due yet."""
        if run_at is not None and run_at > self._clock():
            current = self._timers.get(key)
            if current is None or run_at < current:
                self._timers[key] = run_at
                self._wake.set()
            return
        self._dirty.add(key)
        self._wake.set()

    def on_key_limits(self, handler: KeyLimits) -> None:
        """`handler(function, claim)` runs for each claim with tasks ended or to stop at a
        concurrency-key limit."""
        self._key_limits = handler

    def pools(self) -> dict[FunctionKey, InstancePool]:
        """The live pool of each function this node runs (for the autoscaler and stats)."""
        return {key: slot.pool for key, slot in self._slots.items()}

    def running_rows(self) -> list[int]:
        rows = [row for slot in self._slots.values() for row in slot.inflight]
        rows += [row for slot in self._retired for row in slot.inflight]
        return rows

    @property
    def node(self) -> str:
        return self._node

    def instance_counts(self) -> dict[str, int]:
        """Live instance processes per function name on this node (retiring pools included)."""
        counts: dict[str, int] = {}
        for slot in (*self._slots.values(), *self._retired):
            name = slot.spec.name
            counts[name] = counts.get(name, 0) + len(slot.pool.instances)
        return counts

    # -- control of running attempts (after the store committed the transition) -------------
    def running_task(self, row: int) -> ClaimedTask | None:
        """The attempt of `row` running on this node, if one does."""
        slot = self._slot_running(row)
        return None if slot is None else slot.inflight[row]

    def stop_requested(self, row: int) -> bool:
        """A stop of `row`'s running attempt is under way here (`mark_stopping` ran)."""
        return row in self._stop_requested

    def mark_stopping(self, row: int) -> None:
        """A stop of `row` was committed: whatever its attempt's outcome, it ends Stopped."""
        if self._slot_running(row) is not None:
            self._stop_requested.add(row)

    async def stop_attempt(self, row: int, grace_s: float) -> bool:
        """SIGTERM (then SIGKILL) the attempt of `row`; False when it does not run here."""
        slot = self._slot_running(row)
        return slot is not None and await slot.pool.stop_task(row, grace_s)

    def suspend_attempt(self, row: int) -> bool:
        slot = self._slot_running(row)
        return slot is not None and slot.pool.suspend_task(row)

    def resume_attempt(self, row: int) -> bool:
        slot = self._slot_running(row)
        return slot is not None and slot.pool.resume_task(row)

    def _slot_running(self, row: int) -> PoolSlot | None:
        for slot in (*self._slots.values(), *self._retired):
            if row in slot.inflight:
                return slot
        return None

    # -- pools -------------------------------------------------------------------------------
    def _function_changed(self, key: FunctionKey, spec: FunctionSpec | None) -> None:
        if spec is not None and not satisfies(self._labels, spec.requires):
            spec = None  # no longer placeable here: retired like a deleted function
        current = self._slots.get(key)
        if (
            current is not None
            and spec is not None
            and current.spec.instance_config() == spec.instance_config()
        ):
            # only limits, policies or paused changed: keep the warm pool, apply them now
            current.spec = spec
            current.pool.spec = spec
            self.notify(key)
            return
        old = self._slots.pop(key, None)
        if old is not None:
            self._retire(old)
        if spec is not None and not self._stopping:
            background(self._rebuilds, self._build_slot(spec), f"building {spec.name}'s pool")

    async def _build_slot(self, spec: FunctionSpec) -> None:
        if not spec.ready or not satisfies(self._labels, spec.requires):
            return  # no code yet, or this node lacks the labels it requires
        code_dir: Path | None = None
        if spec.code_sha256 is not None:
            sha = spec.code_sha256
            code_dir = await self._bundles.ensure(sha, lambda: self._fetch_code(sha))
        key = (spec.tenant, spec.name)
        if self._catalog.get(*key) != spec or self._stopping:
            return
        pool = InstancePool(
            spec,
            code_dir,
            self._listener,
            scratch_dir=self._scratch_dir,
            base_env=self._instance_env,
            limits=self._instance_limits,
            capacity=self._capacity,
            idle_ttl_s=self._idle_ttl_s,
            fork_server=self._fork_server,
        )
        await pool.start()
        if self._catalog.get(*key) != spec or self._stopping:
            await pool.stop()  # changed while the pool started: the newer build installs
            return
        old = self._slots.pop(key, None)
        if old is not None:
            self._retire(old)
        self._slots[key] = PoolSlot(spec, pool)
        self.notify(key)

    async def _fetch_code(self, sha: str) -> bytes:
        data = await self._store.get_code(sha)
        if data is None:
            raise LookupError(f"code {sha} is not in the store")
        return data

    def _retire(self, slot: PoolSlot) -> None:
        slot.retiring = True
        if slot.inflight or slot.reserved:
            self._retired.add(slot)
        else:
            self._stop_pool(slot)

    def _stop_pool(self, slot: PoolSlot) -> None:
        self._retired.discard(slot)
        background(self._rebuilds, slot.pool.stop(), f"stopping {slot.spec.name}'s pool")

    # -- the claim loop ----------------------------------------------------------------------
    async def _run(self) -> None:
        next_sweep = 0.0
        while True:
            now = self._clock()
            delay = min([SWEEP_S, *(at - now for at in self._timers.values())])
            if delay > 0 and not self._wake.is_set():
                await wait_for_event(self._wake, delay)
            self._wake.clear()
            now = self._clock()
            fired = [key for key, at in self._timers.items() if at <= now]
            for key in fired:
                del self._timers[key]
                self._dirty.add(key)
            if now >= next_sweep:
                self._dirty.update(self._slots)
                next_sweep = now + SWEEP_S
            dirty, self._dirty = self._dirty, set()
            wants: dict[FunctionKey, int] = {}
            for key in dirty:
                slot = self._slots.get(key)
                if slot is None or slot.spec.paused:
                    continue
                free = slot.free
                if free <= 0:
                    slot.backlog = True
                    continue
                wants[key] = free
            grants = self._grants(wants)
            if grants:
                keys = list(grants)
                claimed = await asyncio.gather(
                    *(self._claim(self._slots[key], grants[key]) for key in keys)
                )
                unused = any(n < grants[k] for k, n in zip(keys, claimed, strict=True))
                denied = [k for k in wants if grants.get(k, 0) < wants[k]]
                if unused and denied:  # room a grant did not use goes to those refused
                    self._dirty.update(denied)
                    self._wake.set()
            for key in wants.keys() - grants.keys():
                self._slots[key].backlog = True
            if fired:
                await asyncio.gather(*(self._rearm(key) for key in fired))

    async def _rearm(self, key: FunctionKey) -> None:
        """After a timer fired, arm it for the next delayed task of the function: the store
        knows it even when this node was not told (a restart, another node's submission)."""
        at = await self._store.next_run_at(*key)
        current = self._timers.get(key)
        if at is not None and (current is None or at < current):
            # A time already passed (due since the claim) fires at once, and re-arms again.
            self._timers[key] = at
            self._wake.set()

    def _grants(self, wants: dict[FunctionKey, int]) -> dict[FunctionKey, int]:
        if self._capacity is None or self._flow is None:
            return wants
        return fair_grants(wants, self._slots, self._capacity, self._flow.share)

    def _room_freed(self) -> None:
        """An instance exited somewhere on the node: pools waiting for room may claim."""
        if self._stopping:
            return
        for key, slot in self._slots.items():
            if slot.backlog:
                self._dirty.add(key)
        self._wake.set()

    async def _claim(self, slot: PoolSlot, count: int) -> int:
        slot.reserved += count
        now = self._clock()
        key = (slot.spec.tenant, slot.spec.name)
        try:
            claimed = await self._store.claim_ready(
                slot.spec.tenant,
                slot.spec.name,
                self._node,
                count,
                now,
                now + self._lease_s,
                now - slot.spec.async_policy.max_event_age_s,
                self._flow.quota(slot.spec) if self._flow is not None else None,
            )
        finally:
            slot.reserved -= count
        slot.backlog = len(claimed) == count or claimed.capped
        slot.capped = claimed.capped
        if claimed.retry_at is not None:
            self.notify(key, claimed.retry_at)  # the rate bucket refills then
        if (claimed.stopped or claimed.preempt) and self._key_limits is not None:
            self._key_limits(slot.spec.name, claimed)
        for task in claimed:
            due = max(task.created_at, task.run_at or task.created_at)
            self._metrics.queue_wait.labels(task.function).observe(max(0.0, task.started_at - due))
            self._metrics.running.labels(task.function).inc()
            slot.inflight[task.row] = task
            background(self._runs, self._run_one(slot, task), f"running task {task.id}")
        return len(claimed)

    async def _run_one(self, slot: PoolSlot, task: ClaimedTask) -> None:
        spec = slot.spec
        deadline = task.started_at + spec.timeout_s
        api_url, token = self._credentials(task, deadline) if self._credentials else (None, None)
        assignment = Assignment(
            row=task.row,
            task_id=task.id,
            function=task.function,
            attempt=task.attempt,
            payload=task.payload,
            deadline=deadline,
            checkpoint=task.checkpoint,
            api_url=api_url,
            token=token,
            attributes=task.attributes,
        )
        try:
            result = await slot.pool.run(assignment)
            outcome = result.outcome
            instance_id = result.instance_id
            if task.row in self._stop_requested:
                outcome = Stopped(outcome.duration_ms, outcome.resources)
            elif self._pools_stopping and not isinstance(outcome, Succeeded):
                outcome = NodeLost(self._node, "node shut down", outcome.duration_ms)
        except asyncio.CancelledError:
            outcome, instance_id = NodeLost(self._node, "node shut down"), None
        finally:
            del slot.inflight[task.row]
            self._metrics.running.labels(task.function).dec()
            self._stop_requested.discard(task.row)
            self._slot_freed(slot)
        detail = {"instance_id": instance_id} if instance_id else None
        await self._completer.apply(
            task.row,
            task.attempt,
            task.max_attempts,
            spec.async_policy.retry_backoff,
            outcome,
            detail,
            function=task.function,
            created_at=task.created_at,
        )
        if slot.capped and self._running_capped(spec) and isinstance(self._store, ClusterFeed):
            # The cap's slot is free only now that the end is committed: every node may claim.
            await self._store.wake(spec.tenant, spec.name)

    def _running_capped(self, spec: FunctionSpec) -> bool:
        """Whether a cluster-wide cap on running tasks applies to the function."""
        if spec.max_concurrency is not None or spec.concurrency:
            return True
        return self._flow is not None and self._flow.tenant_capped(spec.tenant)

    def _slot_freed(self, slot: PoolSlot) -> None:
        if slot.retiring:
            if not slot.inflight and not slot.reserved and slot in self._retired:
                self._stop_pool(slot)
            return
        if self._stopping:
            return
        if slot.backlog:
            self._dirty.add((slot.spec.tenant, slot.spec.name))
            self._wake.set()
        if self._capacity is not None and self._capacity.live >= self._capacity.max_instances:
            self._room_freed()  # a full node: the freed slot is contested by every backlog
        tenant = slot.spec.tenant
        if self._flow is not None and self._flow.tenant_capped(tenant):
            # a running slot of the tenant freed: its other functions may claim again
            self.tenant_changed(tenant)

    def tenant_changed(self, tenant: str) -> None:
        """A tenant's quotas changed, or one of its tasks ended under a tenant cap."""
        for key, other in self._slots.items():
            if key[0] == tenant and other.backlog:
                self._dirty.add(key)
                self._wake.set()
