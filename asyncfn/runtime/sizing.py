"""`PoolSizing`: the sizing bookkeeping of one `InstancePool` — its warm target and the log of
the target's changes, when each instance went idle (its TTL timer, reaping above the floor,
what the node may evict), cold starts, the busy fraction, and `PoolStats`.

The pool owns one and keeps the mechanics (spawning, assignment, closing); the sizing decides
which idle instances go and hands them back through the pool's `retire` callback. The spec is
read through a callable each time: the dispatcher may give the pool a spec with new limits."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeGuard

from asyncfn.domain.models import FunctionSpec
from asyncfn.runtime.autoscaler import DECISION_HISTORY, ScaleDecision
from asyncfn.runtime.capacity import CapacityMember, IdleInstance, NodeCapacity
from asyncfn.runtime.instance import Instance

if TYPE_CHECKING:
    from asyncfn.runtime.forkserver import ForkServer

__all__ = ["PoolSizing", "PoolStats", "fork_server_state", "takes_attempts", "unfit_for"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PoolStats:
    """A pool's instances by state, its sizing, its recent cold starts and target changes."""

    function: str
    instances: int
    """Live instances the pool uses (starting, idle or busy; closing ones excluded)."""
    starting: int
    idle: int
    busy: int
    closing: int
    """Reaped or evicted instances still exiting (they count against the node until gone)."""
    attempts: int
    """Attempts in the pool: running, or waiting for a slot."""
    target: int
    min_instances: int
    max_instances: int
    cold_starts_ms: tuple[float, ...]
    """Spawn (or fork) to ready of the last instances started, oldest first."""
    decisions: tuple[ScaleDecision, ...]
    fork_server: str = "off"
    """"off" (not wanted, not started yet, or stopped), "running", or "failed: <reason>"."""


def unfit_for(spec: FunctionSpec, capacity: NodeCapacity | None) -> str | None:
    """Why no instance of `spec` can ever start on this node, or None."""
    if capacity is not None and spec.memory_mb > capacity.memory_budget_mb:
        return (
            f"memory_mb {spec.memory_mb} exceeds this node's instance memory budget "
            f"({capacity.memory_budget_mb} MiB)"
        )
    return None


def fork_server_state(forker: ForkServer | None) -> str:
    """`PoolStats.fork_server` for a pool whose fork server is `forker` (None: it has none)."""
    if forker is not None and forker.failure is not None:
        return f"failed: {forker.failure}"
    return "running" if forker is not None and forker.alive else "off"


def takes_attempts(instance: Instance) -> bool:
    """Whether `instance` may be given new attempts (not retiring, importable, not paused)."""
    return not (instance.retiring or instance.import_error is not None or instance.suspended)


class PoolSizing:
    """How many instances one pool keeps, and which of its idle ones may go.

    `instances` is the pool's own list of live instances (shared, never replaced); `retire`
    closes one of them (the pool removes it from that list). An instance is idle from
    `idle(instance)` until `not_idle(instance)`; after `idle_ttl_s` it is retired unless the
    pool is at its floor (the larger of `min_instances` and the target). `member` is the pool
    as the node's `capacity` knows it.
    """

    def __init__(
        self,
        spec: Callable[[], FunctionSpec],
        instances: list[Instance],
        *,
        idle_ttl_s: float,
        retire: Callable[[Instance], None],
        capacity: NodeCapacity | None,
        member: CapacityMember,
    ) -> None:
        self._spec = spec
        self._capacity = capacity
        self._member = member
        self._instances = instances
        self._idle_ttl_s = idle_ttl_s
        self._retire = retire
        self.target = spec().min_instances
        self._idle_since: dict[Instance, float] = {}
        self._idle_timers: dict[Instance, asyncio.TimerHandle] = {}
        self._watching: set[asyncio.Task[bool]] = set()
        self._cold_starts: deque[float] = deque(maxlen=DECISION_HISTORY)
        self._decisions: deque[ScaleDecision] = deque(maxlen=DECISION_HISTORY)

    # -- the target -------------------------------------------------------------------------

    def retarget(self, target: int, reason: str = "", *, at: float | None = None) -> None:
        """Set the target (clamped to the spec's range), logging the change if there is one."""
        spec = self._spec()
        target = max(spec.min_instances, min(spec.max_instances, target))
        if target != self.target:
            when = time.time() if at is None else at
            decision = ScaleDecision(when, spec.name, self.target, target, reason, spec.tenant)
            self._decisions.append(decision)
            logger.debug("pool %s: target %s", spec.name, decision)
            self.target = target

    def floor(self) -> int:
        return max(self._spec().min_instances, self.target)

    def warm_up(self, spawn: Callable[[], Instance]) -> int:
        """`spawn` instances up to the target where the node has room now (never evicting, and
        not while other pools' attempts wait for room); answers how many it started."""
        capacity = self._capacity
        if capacity is not None and capacity.room_waiters(besides=self._member):
            return 0
        started = 0
        while len(self._instances) < self.target:
            if capacity is not None and not capacity.has_room(self._member):
                break
            self.idle(spawn())
            started += 1
        return started

    def grow(self, spawn: Callable[[], Instance], room_waiting: int) -> Instance | None:
        """A `spawn`ed instance if the pool and the node have room; when only the node is full,
        close another pool's idle instance (one per attempt waiting for room: `room_waiting`)
        and answer None."""
        if len(self._instances) >= self._spec().max_instances:
            return None
        capacity = self._capacity
        if capacity is None or capacity.has_room(self._member):
            return spawn()
        if capacity.evicting_for(self._member) <= room_waiting:
            capacity.evict_idle_for(self._member)
        return None

    def free_slots(self, waiting: int) -> int:
        """Free slots on the instances that take attempts plus the slots of the instances the
        pool may still start (up to `max_instances`, within the node's room counting other
        pools' idle instances as reclaimable), less the `waiting` attempts."""
        spec = self._spec()
        per = spec.instance_concurrency
        free = sum(max(0, per - i.reserved) for i in self._instances if takes_attempts(i))
        startable = spec.max_instances - len(self._instances)
        if self._capacity is not None:
            startable = min(startable, self._capacity.room_for(self._member))
        return max(0, free + max(0, startable) * per - waiting)

    def busy_fraction(self, waiting: int) -> float:
        """Reserved slots over the slots of the instances that take attempts (1.0 when there is
        no such instance and attempts wait)."""
        taking = [i for i in self._instances if not i.retiring]
        slots = len(taking) * self._spec().instance_concurrency
        if slots == 0:
            return 1.0 if waiting else 0.0
        return min(1.0, sum(i.reserved for i in taking) / slots)

    # -- cold starts ------------------------------------------------------------------------

    def watch(self, instance: Instance) -> None:
        """Record `instance`'s cold start once it is ready (call before starting it)."""
        spawned_at = asyncio.get_running_loop().time()
        watch = asyncio.ensure_future(instance.wait_ready())
        self._watching.add(watch)
        watch.add_done_callback(lambda done: self._on_ready(instance, spawned_at, done))

    def _on_ready(self, instance: Instance, spawned_at: float, done: asyncio.Task[bool]) -> None:
        self._watching.discard(done)
        if done.cancelled() or not done.result():
            return
        cold_ms = instance.cold_start_ms
        if cold_ms is None:
            cold_ms = (asyncio.get_running_loop().time() - spawned_at) * 1000.0
        self._cold_starts.append(float(cold_ms))

    # -- idleness ---------------------------------------------------------------------------

    def idle(self, instance: Instance) -> None:
        """`instance` has nothing to do from now: start its TTL."""
        loop = asyncio.get_running_loop()
        self._idle_since[instance] = loop.time()
        self._idle_timers[instance] = loop.call_later(self._idle_ttl_s, self._reap, instance)

    def not_idle(self, instance: Instance) -> None:
        """`instance` got an attempt, or is going away: it is no longer idle."""
        self._idle_since.pop(instance, None)
        timer = self._idle_timers.pop(instance, None)
        if timer is not None:
            timer.cancel()

    def idle_instances(self) -> list[IdleInstance]:
        """Ready instances with nothing to do, longest idle first (for the node's capacity)."""
        surplus = len(self._instances) > self.floor()
        idle = [
            IdleInstance(instance, since, surplus)
            for instance, since in self._idle_since.items()
            if instance.state == "ready" and not instance.reserved and takes_attempts(instance)
        ]
        return sorted(idle, key=lambda i: i.idle_since)

    def evictable(self, instance: object) -> TypeGuard[Instance]:
        """Whether `instance` is one of ours, ready and idle (the node may close it)."""
        if not isinstance(instance, Instance) or instance not in self._idle_since:
            return False
        return not instance.reserved and instance.state == "ready" and takes_attempts(instance)

    def shed(self) -> None:
        """Above the floor, retire the instances idle for longer than the TTL now."""
        now = asyncio.get_running_loop().time()
        for idle in self.idle_instances():
            if len(self._instances) <= self.floor():
                return
            instance = idle.instance
            if isinstance(instance, Instance) and now - idle.idle_since >= self._idle_ttl_s:
                self._retire(instance)

    def _reap(self, instance: Instance) -> None:
        """The TTL passed: retire the instance if it is still idle and above the floor (kept
        ones stay idle, so a lower target or an eviction can still take them)."""
        self._idle_timers.pop(instance, None)
        if instance.reserved or instance not in self._instances:
            return
        if instance.state != "ready":  # still starting: look again a TTL later
            loop = asyncio.get_running_loop()
            self._idle_timers[instance] = loop.call_later(self._idle_ttl_s, self._reap, instance)
            return
        if len(self._instances) > self.floor():
            self._retire(instance)

    def stop(self) -> None:
        """Cancel every TTL (the pool is stopping)."""
        for timer in self._idle_timers.values():
            timer.cancel()
        self._idle_timers.clear()

    async def settled(self) -> None:
        """Wait for the readiness watches (once the instances have exited, they end)."""
        await asyncio.gather(*self._watching)

    # -- stats ------------------------------------------------------------------------------

    def stats(self, *, closing: int, attempts: int, forker: ForkServer | None) -> PoolStats:
        spec = self._spec()
        states = [(i.state, i.reserved) for i in self._instances]
        return PoolStats(
            function=spec.name,
            instances=len(states),
            starting=sum(1 for state, _ in states if state in ("new", "starting")),
            idle=sum(1 for state, reserved in states if state == "ready" and not reserved),
            busy=sum(1 for state, reserved in states if state == "ready" and reserved),
            closing=closing,
            attempts=attempts,
            target=self.target,
            min_instances=spec.min_instances,
            max_instances=spec.max_instances,
            cold_starts_ms=tuple(self._cold_starts),
            decisions=tuple(self._decisions),
            fork_server=fork_server_state(forker),
        )
