"""Debounce and throttle at submission, store-neutral: when each task of a shaped function's
batch runs, which waiting tasks it supersedes, and the throttle's GCRA (docs/debounce-throttle.md).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from asyncfn.domain.models import Debounce, FunctionSpec, Submission, Throttle

DEBOUNCED = "debounced"
"""The `reason` of the Stopped event of a task a later submission superseded."""


@dataclass(frozen=True, slots=True)
class Shaping:
    """A function's debounce and throttle, as `Store.submit_many` applies them."""

    debounce: Debounce | None = None
    throttle: Throttle | None = None

    @classmethod
    def of(cls, spec: FunctionSpec) -> Shaping | None:
        """The spec's shaping; None when it has neither (the plain submission path)."""
        if spec.debounce is None and spec.throttle is None:
            return None
        return cls(spec.debounce, spec.throttle)

    def debounce_key(self, item: Submission) -> str | None:
        return item.keys.debounce if self.debounce and item.keys else None

    def throttle_key(self, item: Submission) -> str | None:
        return item.keys.throttle if self.throttle and item.keys else None


@dataclass(frozen=True, slots=True)
class Pending:
    """A waiting task with a debounce key: Enqueued, never attempted, not claimed."""

    row: int
    id: str
    first_at: float
    run_at: float


def gcra(
    tat: float | None, now: float, not_before: float, throttle: Throttle
) -> tuple[float, float]:
    """One arrival under the generic cell rate algorithm: (when it may start, the new
    theoretical arrival time). `tat` None: the key has no history (as if tat were now)."""
    interval = 1.0 / throttle.per_s
    tolerance = (throttle.burst - 1) * interval
    tat = now if tat is None else tat
    start = max(now, not_before, tat - tolerance)
    return start, max(tat, start) + interval


@dataclass(slots=True)
class Plan:
    """What a shaped batch becomes, item by item (None for an item that creates nothing)."""

    run_ats: list[float | None]
    first_ats: list[float | None]
    details: list[dict[str, Any] | None]
    tats: dict[str, float] = field(default_factory=dict)
    """The new theoretical arrival time of each throttle key the batch used."""


@dataclass(frozen=True, slots=True)
class _Last:
    id: str
    first_at: float
    run_at: float


def plan(
    shaping: Shaping,
    items: Sequence[Submission],
    ids: Sequence[str],
    fresh: Sequence[bool],
    now: float,
    pending: Mapping[str, Sequence[Pending]],
    tats: Mapping[str, float],
) -> Plan:
    """Run each `fresh` item (one that creates a task) through the debounce, then the throttle,
    in order. `pending` holds the waiting tasks per debounce key, `tats` the stored state per
    throttle key. A task that supersedes another takes over its throttle slot (it does not use
    a new one) and runs no earlier than it would have."""
    out = Plan([None] * len(items), [None] * len(items), [None] * len(items))
    last: dict[str, _Last] = {}
    new_tats = dict(tats)
    for i, item in enumerate(items):
        if not fresh[i]:
            continue
        asked = now if item.run_at is None else item.run_at
        run_at = asked
        detail: dict[str, Any] = {}
        before = None
        dkey = shaping.debounce_key(item)
        if dkey is not None and shaping.debounce is not None:
            before = last.get(dkey) or _latest(pending.get(dkey, ()))
            first_at = now if before is None else before.first_at
            window = shaping.debounce
            run_at = max(asked, min(now + window.window_s, first_at + window.max_wait_s))
            out.first_ats[i] = first_at
            detail["debounce"] = {
                "key": dkey,
                "superseded": None if before is None else before.id,
                "run_at": run_at,
            }
        tkey = shaping.throttle_key(item)
        if tkey is not None and shaping.throttle is not None:
            if before is not None:
                run_at = max(run_at, before.run_at)
            else:
                start, new_tats[tkey] = gcra(new_tats.get(tkey), now, run_at, shaping.throttle)
                if start > run_at:
                    detail["throttled"] = {"key": tkey, "delay_s": round(start - run_at, 6)}
                    run_at = start
        if dkey is not None:
            first = out.first_ats[i]
            assert first is not None
            last[dkey] = _Last(ids[i], first, run_at)
        if run_at > now:
            detail["run_at"] = run_at
        out.run_ats[i] = run_at
        out.details[i] = detail or None
    out.tats = {k: v for k, v in new_tats.items() if tats.get(k) != v}
    return out


def _latest(waiting: Sequence[Pending]) -> _Last | None:
    """The newest waiting task of a key, carrying the earliest first_at of them all (normally
    there is one; more only when the debounce was added with tasks already waiting)."""
    if not waiting:
        return None
    newest = max(waiting, key=lambda p: p.row)
    first_at = min(p.first_at for p in waiting)
    return _Last(newest.id, first_at, max(p.run_at for p in waiting))


def supersessions(
    shaping: Shaping,
    items: Sequence[Submission],
    created: Sequence[tuple[int, str] | None],
    pending: Mapping[str, Sequence[Pending]],
) -> list[tuple[int, str]]:
    """The tasks to stop as (row, id of the task that superseded it), from what the insert
    actually created (`created[i]`: the new task's (row, id), or None): per debounce key, the
    waiting tasks give way to the batch's first new task, and each new task to the next."""
    chains: dict[str, list[tuple[int, str]]] = {}
    for item, new in zip(items, created, strict=True):
        dkey = shaping.debounce_key(item)
        if dkey is not None and new is not None:
            chains.setdefault(dkey, []).append(new)
    stops: list[tuple[int, str]] = []
    for dkey, chain in chains.items():
        stops += [(p.row, chain[0][1]) for p in sorted(pending.get(dkey, ()), key=lambda p: p.row)]
        stops += [(row, chain[j + 1][1]) for j, (row, _) in enumerate(chain[:-1])]
    return stops


def fresh_items(ids: Sequence[str], taken: Collection[str]) -> list[bool]:
    """Whether each item of a batch creates a task: the first of its id, and the id not taken."""
    seen: set[str] = set()
    out: list[bool] = []
    for task_id in ids:
        out.append(task_id not in seen and task_id not in taken)
        seen.add(task_id)
    return out


def debounce_keys(shaping: Shaping, items: Sequence[Submission]) -> list[str]:
    """The distinct debounce keys of a batch, sorted (the order PostgreSQL locks them in)."""
    return sorted({k for k in map(shaping.debounce_key, items) if k is not None})


def throttle_keys(shaping: Shaping, items: Sequence[Submission]) -> list[str]:
    return sorted({k for k in map(shaping.throttle_key, items) if k is not None})


def stopped_detail(superseded_by: str) -> dict[str, str]:
    """The Stopped event of a superseded task (`from` as a user's stop of a waiting task)."""
    return {"reason": DEBOUNCED, "superseded_by": superseded_by, "from": "Enqueued"}
