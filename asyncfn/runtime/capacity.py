"""`NodeCapacity`: the node's budget of instance processes (a count and a memory reservation)
shared by all its pools — admission, exact accounting until each process exits, and eviction of
other pools' idle instances to make room."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import psutil

__all__ = ["CapacityMember", "NodeCapacity", "default_memory_budget_mb"]

logger = logging.getLogger(__name__)

MEMORY_BUDGET_FRACTION = 0.8


def default_memory_budget_mb() -> int:
    """80 % of the machine's physical memory, in MiB."""
    return int(psutil.virtual_memory().total * MEMORY_BUDGET_FRACTION) // (1024 * 1024)


@dataclass(frozen=True, slots=True)
class IdleInstance:
    """An instance a member could close now to give its room to another pool."""

    instance: object
    idle_since: float
    """On the event loop's clock."""
    surplus: bool
    """Above its pool's floor (max of min_instances and target): evicted first."""


class CapacityMember(Protocol):
    """What a pool shows the node's capacity (`InstancePool` is one)."""

    @property
    def name(self) -> str:
        """The function's name (for the log)."""

    @property
    def instance_memory_mb(self) -> int: ...

    @property
    def room_waiters(self) -> int:
        """Attempts waiting because the node had no room for a new instance."""

    def idle_instances(self) -> list[IdleInstance]: ...

    def evict(self, instance: object) -> bool:
        """Close `instance` gracefully if it is still idle; False when it no longer is."""

    def room_freed(self) -> None:
        """An instance of some pool exited: waiters may retry."""


@dataclass(slots=True)
class _Reservation:
    member: CapacityMember
    memory_mb: int
    evicted_for: CapacityMember | None = None


class NodeCapacity:
    """At most `max_instances` instance processes and `memory_budget_mb` of their `memory_mb`
    on this node, across every pool.

    A pool asks `has_room` and then `admit`s an instance before starting it (no await between,
    so the two cannot race), and `discharge`s it when the process has exited — not when the pool
    stops using it: a closing instance still counts until it is gone. Every discharge tells all
    pools (`room_freed`), so attempts waiting for room retry.
    """

    def __init__(self, max_instances: int, memory_budget_mb: int | None = None) -> None:
        if max_instances < 1:
            raise ValueError("max_instances must be at least 1")
        budget = default_memory_budget_mb() if memory_budget_mb is None else memory_budget_mb
        if budget < 1:
            raise ValueError("memory_budget_mb must be positive")
        self.max_instances = max_instances
        self.memory_budget_mb = budget
        self._members: weakref.WeakSet[CapacityMember] = weakref.WeakSet()
        self._live: dict[object, _Reservation] = {}
        self._memory_mb = 0
        self._listeners: list[Callable[[], None]] = []

    # -- membership and accounting ----------------------------------------------------------

    def register(self, member: CapacityMember) -> None:
        self._members.add(member)

    def unregister(self, member: CapacityMember) -> None:
        self._members.discard(member)

    def on_room_freed(self, listener: Callable[[], None]) -> None:
        """Call `listener` whenever an instance exits (the engine re-offers work to its pools:
        their `free_slots()` may have grown)."""
        self._listeners.append(listener)

    def has_room(self, member: CapacityMember) -> bool:
        """Whether one more instance of `member` fits now, without evicting anything."""
        return self._room(member.instance_memory_mb, 0, 0) > 0

    def admit(self, member: CapacityMember, instance: object) -> None:
        """Count `instance` (about to start) against the node until `discharge`."""
        if instance in self._live:
            return
        self._live[instance] = _Reservation(member, member.instance_memory_mb)
        self._memory_mb += member.instance_memory_mb

    def discharge(self, instance: object) -> None:
        """`instance`'s process has exited (or never started): give its room back."""
        reservation = self._live.pop(instance, None)
        if reservation is None:
            return
        self._memory_mb -= reservation.memory_mb
        for member in list(self._members):
            member.room_freed()
        for listener in self._listeners:
            listener()

    @property
    def live(self) -> int:
        """Instance processes counted now (starting, running, idle or closing)."""
        return len(self._live)

    @property
    def memory_reserved_mb(self) -> int:
        return self._memory_mb

    def live_of(self, member: CapacityMember) -> int:
        return sum(1 for r in self._live.values() if r.member is member)

    def room_waiters(self, besides: CapacityMember | None = None) -> int:
        """Attempts of pools other than `besides` waiting for room (pre-warming yields to them)."""
        return sum(m.room_waiters for m in list(self._members) if m is not besides)

    def evicting_for(self, member: CapacityMember) -> int:
        """Instances evicted for `member` that have not exited yet."""
        return sum(1 for r in self._live.values() if r.evicted_for is member)

    # -- room -------------------------------------------------------------------------------

    def room_for(self, member: CapacityMember) -> int:
        """How many more instances `member` could start now, counting the idle instances of
        other pools as reclaimable (by eviction)."""
        reclaim_count = 0
        reclaim_mb = 0
        for other in list(self._members):
            if other is member:
                continue
            idle = other.idle_instances()
            reclaim_count += len(idle)
            reclaim_mb += len(idle) * other.instance_memory_mb
        return self._room(member.instance_memory_mb, reclaim_count, reclaim_mb)

    def _room(self, memory_mb: int, reclaim_count: int, reclaim_mb: int) -> int:
        by_count = self.max_instances - len(self._live) + reclaim_count
        by_memory = (self.memory_budget_mb - self._memory_mb + reclaim_mb) // max(1, memory_mb)
        return max(0, min(by_count, by_memory))

    def evict_idle_for(self, member: CapacityMember) -> bool:
        """Close the longest-idle ready instance of another pool (one above its pool's floor
        first) so that `member` gets its room once it exits; False when there is none."""
        candidates = [
            (not idle.surplus, idle.idle_since, index, other, idle.instance)
            for index, other in enumerate(list(self._members))
            if other is not member
            for idle in other.idle_instances()
        ]
        for *_, other, instance in sorted(candidates, key=lambda c: c[:3]):
            reservation = self._live.get(instance)
            if other.evict(instance):
                if reservation is not None:
                    reservation.evicted_for = member
                logger.info(
                    "node full: closing an idle instance of %s to make room for %s",
                    other.name,
                    member.name,
                )
                return True
        return False
