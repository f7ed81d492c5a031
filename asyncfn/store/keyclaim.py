"""A keyed claim's plan, as both stores make it (`FunctionSpec.concurrency`): from the running
tasks and the due candidates of each waiting key value, which tasks run (round robin across the
values of the first limit's key), which end Stopped (`cancel_newest`) and which running tasks
to stop (`cancel_oldest`). Pure: the SQL that reads and writes lives in each store's keys.py."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from asyncfn.domain.models import ConcurrencyLimit

VALUES_PER_CLAIM = 256
"""Waiting values of the first key a claim looks at, from the one after the cursor, wrapping."""
FETCH_BUDGET = 4_096
"""Candidate rows one claim reads at most, shared among the values it looks at."""
STOP_BATCH = 64
"""Tasks of one value a `cancel_newest` claim ends at most (the next claim goes on)."""
SLACK = 8
"""Extra candidates per value when a second or third limit may hold some back."""
REASON = "concurrency_key"

Keys = tuple[str | None, str | None, str | None]


@dataclass(frozen=True, slots=True)
class Keyed:
    """A task as the plan sees it: its row, id and key values (ckey1..3)."""

    row: int
    id: str
    keys: Keys


@dataclass(frozen=True, slots=True)
class Running(Keyed):
    """A task holding a lease: counted against its values' limits."""

    started_at: float = 0.0
    stopping: bool = False


@dataclass(frozen=True, slots=True)
class Stop:
    """A waiting task to end Stopped, or a running one to stop, with the event's detail."""

    task: Keyed
    detail: dict[str, Any]


@dataclass(slots=True)
class KeyPlan:
    """What a keyed claim does: `take` in claim order, `stop` (waiting tasks → Stopped),
    `preempt` (running tasks to stop), the first key's value served last (the next claim
    starts after it) and whether a limit held a due task back (there may be more to claim)."""

    take: list[Keyed] = field(default_factory=list)
    stop: list[Stop] = field(default_factory=list)
    preempt: list[Stop] = field(default_factory=list)
    last_served: str | None = None
    held: bool = False


def visit_order(after: Sequence[str], wrapped: Sequence[str]) -> list[str]:
    """The first key's waiting values in the order a claim serves them, at most
    VALUES_PER_CLAIM: `after` the cursor (the value served last), then, wrapping, those up to
    and including it (both as the store's collation orders them)."""
    return [*after, *wrapped][:VALUES_PER_CLAIM]


def fetch_sizes(
    limits: Sequence[ConcurrencyLimit],
    values: Sequence[str | None],
    running: Sequence[Running],
    allowed: int,
) -> dict[str | None, int]:
    """How many due candidates to read per value: what the first limit still lets it run (at
    most `allowed`) and one more (held back or not), a few more when other limits may hold some
    back, a batch to end when it is at a `cancel_newest` limit, one (the replacement) at a
    `cancel_oldest` one."""
    first = limits[0]
    counts = Counter(r.keys[0] for r in running)
    budget = max(2, FETCH_BUDGET // max(1, len(values)))
    slack = SLACK if len(limits) > 1 else 0
    sizes: dict[str | None, int] = {}
    for value in values:
        room = allowed if value is None else min(allowed, first.limit - counts[value])
        if room > 0:
            size = room + 1 + slack  # one more: whether a limit holds any back
        elif first.strategy == "cancel_newest":
            size = STOP_BATCH
        elif first.strategy == "cancel_oldest":
            size = 1
        else:
            size = 0
        sizes[value] = min(size, budget)
    return {v: n for v, n in sizes.items() if n > 0}


def plan(
    limits: Sequence[ConcurrencyLimit],
    values: Sequence[str | None],
    candidates: Mapping[str | None, Sequence[Keyed]],
    running: Sequence[Running],
    allowed: int,
) -> KeyPlan:
    """Round robin over `values` (candidates of each in dispatch order): each round takes the
    first task of each value that every limit lets run, until `allowed` are taken. A task at a
    limit is held (queue), ended (cancel_newest) or replaces the oldest running task of its
    value (cancel_oldest: one per value while none of it is Stopping)."""
    return _Planner(limits, running).run(values, candidates, allowed)


class _Planner:
    """One plan's running counts per limit and value, and what it has decided so far."""

    def __init__(self, limits: Sequence[ConcurrencyLimit], running: Sequence[Running]) -> None:
        self.limits = limits
        self.counts = [Counter(r.keys[i] for r in running) for i in range(len(limits))]
        self.stopping = [{r.keys[i] for r in running if r.stopping} for i in range(len(limits))]
        self.live = [r for r in running if not r.stopping]
        self.result = KeyPlan()

    def run(
        self,
        values: Sequence[str | None],
        candidates: Mapping[str | None, Sequence[Keyed]],
        allowed: int,
    ) -> KeyPlan:
        queues = {v: deque(candidates.get(v, ())) for v in values}
        taken = self.result.take
        while len(taken) < allowed and any(queues.values()):
            for value in values:
                if len(taken) >= allowed:
                    break
                self._serve(value, queues[value])
        self.result.held = self.result.held or any(queues.values())
        return self.result

    def _serve(self, value: str | None, queue: deque[Keyed]) -> None:
        """Take the first task of `value` that may run; settle those before it at a limit."""
        while queue:
            task = queue.popleft()
            at = _at_limit(self.limits, self.counts, task.keys)
            if at is None:
                self.result.take.append(task)
                for i in range(len(self.limits)):
                    self.counts[i][task.keys[i]] += 1
                if value is not None:
                    self.result.last_served = value
                return
            if self._at(task, at) and at == 0:
                queue.clear()  # every task of this value is held by the same limit

    def _at(self, task: Keyed, at: int) -> bool:
        """A task at limit `at`: ended (False: the next one of its value may run) or held,
        replacing the oldest running task of its value at a cancel_oldest limit (True)."""
        limit = self.limits[at]
        detail = _detail(limit, task.keys[at])
        if limit.strategy == "cancel_newest":
            self.result.stop.append(Stop(task, detail))
            return False
        self.result.held = True
        if limit.strategy == "cancel_oldest":
            victim = _oldest(self.live, at, task.keys[at], self.stopping[at])
            if victim is not None:
                self.live.remove(victim)
                for i in range(len(self.limits)):
                    self.stopping[i].add(victim.keys[i])
                self.result.preempt.append(Stop(victim, {**detail, "replaced_by": task.id}))
        return True


def _at_limit(
    limits: Sequence[ConcurrencyLimit], counts: Sequence[Counter[str | None]], keys: Keys
) -> int | None:
    """The first limit a task with `keys` is at (None: it may run). A task without a value for
    a limit (submitted before the limit existed) is not held by it."""
    for i, limit in enumerate(limits):
        value = keys[i]
        if value is not None and counts[i][value] >= limit.limit:
            return i
    return None


def _oldest(
    live: Sequence[Running], index: int, value: str | None, stopping: set[str | None]
) -> Running | None:
    if value in stopping:
        return None
    same = [r for r in live if r.keys[index] == value]
    return min(same, key=lambda r: (r.started_at, r.row)) if same else None


def _detail(limit: ConcurrencyLimit, value: str | None) -> dict[str, Any]:
    return {
        "reason": REASON,
        "key": limit.key,
        "value": value,
        "limit": limit.limit,
        "strategy": limit.strategy,
    }
