"""Flow control as pure arithmetic: token buckets (rate limits), the quota a claim must respect,
and deficit round robin that shares scarce dispatch room fairly across tenants and functions."""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from asyncfn.domain.models import ClaimedTask, ConcurrencyLimit

K = TypeVar("K", bound=Hashable)


def burst_of(rate: float, burst: int | None) -> float:
    """A bucket's size: `burst`, or one second's worth of `rate` (at least 1)."""
    return float(burst) if burst is not None else max(1.0, rate)


def refill(tokens: float, updated_at: float, now: float, rate: float, burst: float) -> float:
    """The tokens a bucket holds at `now`: what it held plus `rate` per second since, capped."""
    return min(burst, tokens + max(0.0, now - updated_at) * rate)


@dataclass(slots=True)
class TokenBucket:
    """An in-memory token bucket; starts full."""

    rate: float
    burst: float
    tokens: float = -1.0
    updated_at: float = 0.0

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = self.burst

    def take(self, wanted: int, now: float) -> int:
        """Take up to `wanted` whole tokens; answers how many were taken."""
        self.tokens = refill(self.tokens, self.updated_at, now, self.rate, self.burst)
        self.updated_at = now
        taken = min(wanted, math.floor(self.tokens))
        self.tokens -= taken
        return max(0, taken)

    def take_all(self, count: int, now: float) -> float:
        """All or nothing: take `count` tokens when the bucket holds them (a batch larger than
        the bucket needs it full, and leaves it in debt); else take none and answer the seconds
        until it would hold them (0.0: taken)."""
        self.tokens = refill(self.tokens, self.updated_at, now, self.rate, self.burst)
        self.updated_at = now
        needed = min(float(count), self.burst)
        if self.tokens + 1e-9 < needed:
            return (needed - self.tokens) / self.rate
        self.tokens -= count
        return 0.0

    def wait_s(self, now: float, wanted: int = 1) -> float:
        """Seconds until `wanted` tokens are there (0 when they are now)."""
        tokens = refill(self.tokens, self.updated_at, now, self.rate, self.burst)
        return max(0.0, (wanted - tokens) / self.rate)

    def retune(self, rate: float, burst: float) -> None:
        """New limits at runtime, keeping the tokens held (capped at the new size)."""
        self.rate, self.burst = rate, burst
        self.tokens = min(self.tokens, burst)


@dataclass(frozen=True, slots=True)
class ClaimQuota:
    """What one claim may take besides its count: running caps of the function and of its tenant
    (across the cluster), the function's dispatch rate (a bucket the store keeps) and its
    concurrency keys (running tasks per key value, `FunctionSpec.concurrency`)."""

    function_cap: int | None = None
    tenant_cap: int | None = None
    rate: float | None = None
    burst: float = 1.0
    keys: tuple[ConcurrencyLimit, ...] = ()

    @property
    def unlimited(self) -> bool:
        return (
            self.function_cap is None
            and self.tenant_cap is None
            and self.rate is None
            and not self.keys
        )


@dataclass(frozen=True, slots=True)
class Preempt:
    """A running task a claim asks to stop (`cancel_oldest`): a waiting task of the same key
    value, `detail["replaced_by"]`, runs in its place once it has ended."""

    row: int
    task_id: str
    tenant: str
    function: str
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Claim:
    """What `Store.claim_ready` took. `capped`: the quota, not the queue, bounded it (there may
    be more due); `retry_at`: when the rate bucket holds a token again (None: not rate-bound);
    `stopped`: rows of tasks the claim ended Stopped (`cancel_newest`); `preempt`: running tasks
    to stop (`cancel_oldest`), which the claim leaves to the engine's stop path."""

    tasks: list[ClaimedTask] = field(default_factory=list)
    capped: bool = False
    retry_at: float | None = None
    stopped: tuple[int, ...] = ()
    preempt: tuple[Preempt, ...] = ()

    def __len__(self) -> int:
        return len(self.tasks)

    def __iter__(self) -> Iterator[ClaimedTask]:
        return iter(self.tasks)

    def __getitem__(self, index: int) -> ClaimedTask:
        return self.tasks[index]


def allowed_by_quota(
    limit: int,
    quota: ClaimQuota,
    *,
    function_running: int,
    tenant_running: int,
    tokens: float | None,
) -> tuple[int, bool]:
    """How many of `limit` a claim may take under `quota`, given what runs and the bucket's
    tokens now; and whether the quota (not `limit`) is what bounds it."""
    allowed = limit
    if quota.function_cap is not None:
        allowed = min(allowed, quota.function_cap - function_running)
    if quota.tenant_cap is not None:
        allowed = min(allowed, quota.tenant_cap - tenant_running)
    if tokens is not None:
        allowed = min(allowed, math.floor(tokens))
    allowed = max(0, allowed)
    return allowed, allowed < limit


class DeficitRoundRobin(Generic[K]):
    """Shares `room` units among keys that want some, in proportion to their weights, keeping
    each key's unused deficit across rounds (Shreedhar and Varghese's DRR): a key that got less
    than its share before is served first now, so a flood cannot starve a trickle."""

    def __init__(self, quantum: float = 1.0) -> None:
        self._quantum = quantum
        self._deficit: dict[K, float] = {}
        self._order: list[K] = []

    def allocate(
        self, demand: Mapping[K, int], room: int, weights: Mapping[K, float] | None = None
    ) -> dict[K, int]:
        """Per key, how many of `room` it gets (at most its demand); keys without demand lose
        their deficit."""
        wanting = {k: d for k, d in demand.items() if d > 0}
        for key in list(self._deficit):
            if key not in wanting:
                del self._deficit[key]
        self._order = [k for k in self._order if k in wanting]
        self._order += [k for k in wanting if k not in self._deficit]
        for key in wanting:
            self._deficit.setdefault(key, 0.0)
        granted = dict.fromkeys(wanting, 0)
        if room >= sum(wanting.values()):
            return {k: d for k, d in wanting.items()}
        while room > 0:
            progressed = False
            for key in list(self._order):
                if room <= 0:
                    break
                left = wanting[key] - granted[key]
                if left <= 0:
                    continue
                weight = (weights or {}).get(key, 1.0)
                self._deficit[key] += self._quantum * weight
                take = min(left, room, math.floor(self._deficit[key]))
                if take > 0:
                    granted[key] += take
                    self._deficit[key] -= take
                    room -= take
                    progressed = True
            if not progressed and all(granted[k] >= wanting[k] for k in wanting):
                break
            # rotate so the next round starts after the last key served
            if self._order:
                self._order.append(self._order.pop(0))
        return {k: g for k, g in granted.items() if g > 0}


class FairShare:
    """Splits dispatch room among (tenant, function) keys: first fairly among tenants, then
    within each tenant among its functions, each level deficit round robin, so neither a
    flooding tenant nor a flooding function starves the others."""

    def __init__(self) -> None:
        self._tenants: DeficitRoundRobin[str] = DeficitRoundRobin()
        self._functions: dict[str, DeficitRoundRobin[tuple[str, str]]] = {}

    def allocate(
        self, demand: Mapping[tuple[str, str], int], room: int
    ) -> dict[tuple[str, str], int]:
        """Per key, how much of `room` it gets (at most its demand)."""
        if room <= 0:
            return {}
        if room >= sum(demand.values()):
            return {k: d for k, d in demand.items() if d > 0}
        by_tenant: dict[str, dict[tuple[str, str], int]] = {}
        for key, wanted in demand.items():
            if wanted > 0:
                by_tenant.setdefault(key[0], {})[key] = wanted
        tenant_demand = {t: sum(fs.values()) for t, fs in by_tenant.items()}
        granted: dict[tuple[str, str], int] = {}
        for tenant, grant in self._tenants.allocate(tenant_demand, room).items():
            share = self._functions.setdefault(tenant, DeficitRoundRobin())
            granted.update(share.allocate(by_tenant[tenant], grant))
        for tenant in list(self._functions):
            if tenant not in by_tenant:
                del self._functions[tenant]
        return granted
