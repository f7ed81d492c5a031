"""`Autoscaler`: how many warm instances each pool should keep, from its demand, the measured
utilisation and the node's capacity — pure decisions, plus each pool's log of target changes."""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Protocol, TypeVar

import psutil

from asyncfn.domain.models import FunctionSpec
from asyncfn.runtime.capacity import NodeCapacity

__all__ = [
    "CPU_SATURATED_PERCENT",
    "DECISION_HISTORY",
    "Autoscaler",
    "Demand",
    "FitRequest",
    "ScalablePool",
    "ScaleDecision",
    "cpu_hold",
    "fit_into_capacity",
    "wanted_instances",
]

logger = logging.getLogger("asyncfn.autoscaler")

DECISION_HISTORY = 20
CPU_SATURATED_PERCENT = 95.0
POOL_SATURATED_FRACTION = 0.9
BUSY_WINDOW_S = 2.0

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class ScaleDecision:
    """One change of a pool's target (warm instances), and why."""

    at: float
    function: str
    before: int
    after: int
    reason: str
    tenant: str = ""

    def __str__(self) -> str:
        return f"{self.function}: {self.before}→{self.after} ({self.reason})"


@dataclass(frozen=True, slots=True)
class Demand:
    """A pool's work now: tasks waiting in the store and attempts the pool holds."""

    queued: int
    running: int


@dataclass(frozen=True, slots=True)
class FitRequest:
    """One pool's claim on the node: its floor, what it wants, and an instance's memory."""

    min_instances: int
    wanted: int
    memory_mb: int


class ScalablePool(Protocol):
    """What the autoscaler reads from a pool (`InstancePool` is one)."""

    @property
    def spec(self) -> FunctionSpec: ...

    @property
    def target(self) -> int: ...

    @property
    def instances(self) -> tuple[object, ...]: ...

    def busy_fraction(self) -> float: ...


def wanted_instances(demand: Demand, spec: FunctionSpec) -> int:
    """Instances to serve `demand` at once: ceil(work / instance_concurrency), clamped to
    [min_instances, max_instances]."""
    work = max(0, demand.queued) + max(0, demand.running)
    wanted = math.ceil(work / max(1, spec.instance_concurrency))
    return max(spec.min_instances, min(spec.max_instances, wanted))


def cpu_hold(wanted: int, current: int, node_cpu: float, busy: float) -> int | None:
    """The target to hold at instead of growing to `wanted`, or None to grow.

    When the node's CPU is saturated (≥ 95 %) and the pool's instances are all busy (its busy
    fraction, smoothed, ≥ 0.9), more instances of it would only share the same saturated cores:
    each costs memory and a cold start and adds no throughput, so the target stays at `current`
    and the queue waits for the instances there are. A pool that is not all busy, or a node with
    CPU to spare, grows as demand says.
    """
    if wanted <= current:
        return None
    if node_cpu >= CPU_SATURATED_PERCENT and busy >= POOL_SATURATED_FRACTION:
        return current
    return None


def fit_into_capacity(
    requests: Mapping[K, FitRequest], max_instances: int, memory_budget_mb: int
) -> dict[K, int]:
    """Fit the wanted targets into the node: every pool its `min_instances` first (granted even
    when the floors alone overflow the node: a pool cannot start beyond the node's capacity
    anyway), then the rest max-min fairly, one instance at a time to the pool that has been
    given the fewest above its floor, while both the instance count and the memory last."""
    given = {key: min(r.min_instances, r.wanted) for key, r in requests.items()}
    count_left = max_instances - sum(given.values())
    memory_left = memory_budget_mb - sum(given[k] * r.memory_mb for k, r in requests.items())
    hungry = [key for key, r in requests.items() if given[key] < r.wanted]
    while count_left > 0 and hungry:
        key = min(hungry, key=lambda k: given[k] - requests[k].min_instances)
        request = requests[key]
        if request.memory_mb > memory_left:
            hungry.remove(key)  # no room for one more of this pool's size
            continue
        given[key] += 1
        count_left -= 1
        memory_left -= request.memory_mb
        if given[key] >= request.wanted:
            hungry.remove(key)
    return given


@dataclass(slots=True)
class _Busy:
    fraction: float
    at: float


class Autoscaler:
    """Decides every pool's target from its demand; remembers the last `DECISION_HISTORY`
    changes of each pool and logs every change (logger `asyncfn.autoscaler`, INFO).

    A target is a floor of warm instances: the pool still starts instances on demand up to
    `max_instances` within the node's capacity; the target decides how many it keeps warm (and
    pre-starts) and how many idle ones may go after the TTL.
    """

    def __init__(
        self,
        capacity: NodeCapacity | None = None,
        *,
        cpu_percent: Callable[[], float] | None = None,
        busy_window_s: float = BUSY_WINDOW_S,
        history: int = DECISION_HISTORY,
    ) -> None:
        self._capacity = capacity
        self._cpu_percent = cpu_percent or _node_cpu_percent
        self._window_s = busy_window_s
        self._history = history
        self._busy: dict[Hashable, _Busy] = {}
        self._log: dict[Hashable, deque[ScaleDecision]] = {}

    def decide(
        self, pools: Mapping[K, ScalablePool], demand: Mapping[K, Demand], now: float
    ) -> list[ScaleDecision]:
        """The targets that change, in `pools` order; a pool absent from `demand` has none."""
        node_cpu = self._cpu_percent()
        wanted: dict[K, int] = {}
        reasons: dict[K, str] = {}
        for key, pool in pools.items():
            d = demand.get(key, Demand(0, 0))
            spec = pool.spec
            want = wanted_instances(d, spec)
            reasons[key] = (
                f"queued {d.queued} + running {d.running}, "
                f"concurrency {spec.instance_concurrency}, "
                f"range {spec.min_instances}..{spec.max_instances}"
            )
            busy = self._smoothed_busy(key, pool.busy_fraction(), now)
            held = cpu_hold(want, max(pool.target, len(pool.instances)), node_cpu, busy)
            if held is not None:
                want = max(spec.min_instances, held)
                reasons[key] += f"; held: node CPU {node_cpu:.0f}%, instances {busy:.0%} busy"
            wanted[key] = want
        targets = wanted
        if self._capacity is not None:
            requests = {
                key: FitRequest(pool.spec.min_instances, wanted[key], pool.spec.memory_mb)
                for key, pool in pools.items()
            }
            cap = self._capacity
            targets = fit_into_capacity(requests, cap.max_instances, cap.memory_budget_mb)
            for key, target in targets.items():
                if target < wanted[key]:
                    reasons[key] += f"; {wanted[key]} wanted, node capacity shared"
        for gone in [k for k in self._busy if k not in pools]:
            del self._busy[gone]
        return [
            self._record(key, pool, targets[key], reasons[key], now)
            for key, pool in pools.items()
            if targets[key] != pool.target
        ]

    def decisions(self, key: Hashable) -> tuple[ScaleDecision, ...]:
        """The last changes of `key`'s target, oldest first."""
        return tuple(self._log.get(key, ()))

    def forget(self, key: Hashable) -> None:
        """Drop `key`'s history (its function was deleted)."""
        self._log.pop(key, None)
        self._busy.pop(key, None)

    def _smoothed_busy(self, key: Hashable, fraction: float, now: float) -> float:
        """An exponentially weighted mean of the pool's busy fraction, time constant
        `busy_window_s` (so irregular ticks weigh by the time they cover)."""
        last = self._busy.get(key)
        if last is None:
            self._busy[key] = _Busy(fraction, now)
            return fraction
        alpha = 1.0 - math.exp(-max(0.0, now - last.at) / self._window_s)
        last.fraction += alpha * (fraction - last.fraction)
        last.at = now
        return last.fraction

    def _record(
        self, key: Hashable, pool: ScalablePool, target: int, reason: str, now: float
    ) -> ScaleDecision:
        decision = ScaleDecision(now, pool.spec.name, pool.target, target, reason, pool.spec.tenant)
        self._log.setdefault(key, deque(maxlen=self._history)).append(decision)
        logger.info(
            "scale %s: %d→%d (%s)", decision.function, decision.before, decision.after, reason
        )
        return decision


def _node_cpu_percent() -> float:
    """The node's CPU use since the previous call (the first call answers 0.0)."""
    return float(psutil.cpu_percent(interval=None))
