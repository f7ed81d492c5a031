"""PoolSlot: one function's pool on this node and the attempts the dispatcher runs on it; and
`fair_grants`, which shares the node's instance room among functions when it is short."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from asyncfn.domain.models import ClaimedTask, FunctionSpec
from asyncfn.engine.catalog import FunctionKey
from asyncfn.runtime.capacity import NodeCapacity
from asyncfn.runtime.pool import InstancePool

Share = Callable[[Mapping[FunctionKey, int], int], dict[FunctionKey, int]]


@dataclass(eq=False)
class PoolSlot:
    """A function's pool and the attempts this node runs on it."""

    spec: FunctionSpec
    pool: InstancePool
    inflight: dict[int, ClaimedTask] = field(default_factory=dict)
    reserved: int = 0
    backlog: bool = True
    capped: bool = False
    """The last claim was bounded by a cluster-wide quota (a cap, a key limit, the rate)."""
    retiring: bool = False

    @property
    def free(self) -> int:
        """Attempts this node may claim for the function now: what its pool could start less
        the claims in flight and the claimed attempts not yet handed to the pool."""
        handed = max(0, len(self.inflight) - self.pool.busy)
        return self.pool.free_slots() - self.reserved - handed


def fair_grants(
    wants: Mapping[FunctionKey, int],
    slots: Mapping[FunctionKey, PoolSlot],
    capacity: NodeCapacity,
    share: Share,
) -> dict[FunctionKey, int]:
    """How many attempts each function may claim now, of the `wants` its pool could start.

    Free slots on a function's own busy instances are its own. A new attempt beyond them needs
    an instance: node room that is free, or an idle instance of any pool (which its pool then
    evicts). When the functions want more instances than that, `share` splits the room among
    them (fairly across tenants, then functions)."""
    room = capacity.max_instances - capacity.live
    for slot in slots.values():
        room += sum(1 for i in slot.pool.instances if i.reserved == 0 and not i.retiring)
    own: dict[FunctionKey, int] = {}
    units: dict[FunctionKey, int] = {}
    for key, want in wants.items():
        pool = slots[key].pool
        per = pool.spec.instance_concurrency
        partial = sum(
            per - i.reserved for i in pool.instances if 0 < i.reserved < per and not i.retiring
        )
        own[key] = min(want, partial)
        units[key] = -(-(want - own[key]) // per)
    if sum(units.values()) <= room:
        return dict(wants)
    shared = share(units, max(0, room))
    grants = {}
    for key, want in wants.items():
        per = slots[key].pool.spec.instance_concurrency
        granted = min(want, own[key] + shared.get(key, 0) * per)
        if granted > 0:
            grants[key] = granted
    return grants
