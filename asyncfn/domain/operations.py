"""Bulk operations: the task filter, which tasks each kind (stop, rerun, purge) acts on, and the
Operation record that tracks one with its progress. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from asyncfn.domain.states import TaskStatus

OperationKind = Literal["stop", "rerun", "purge"]
OperationStatus = Literal["running", "succeeded", "failed"]
KINDS: tuple[OperationKind, ...] = get_args(OperationKind)

STOPPABLE = tuple(s for s in TaskStatus if not s.terminal and s is not TaskStatus.STOPPING)
"""What a stop acts on: every status not ended (a Stopping task is being stopped already)."""
ENDED = tuple(s for s in TaskStatus if s.terminal)


@dataclass(frozen=True, slots=True)
class TaskFilter:
    """Which tasks of a tenant an operation covers; every field given must hold. `everything`
    is the explicit "all tasks" (an empty filter is refused at the edge)."""

    function: str | None = None
    statuses: tuple[TaskStatus, ...] = ()
    created_after: float | None = None
    created_before: float | None = None
    key: str | None = None
    """Equal to any of the task's key values (concurrency keys, debounce, throttle)."""
    labels: tuple[tuple[str, str], ...] = ()
    """Each pair equals the task's attribute of that name (its CloudEvents context)."""
    everything: bool = False

    @property
    def empty(self) -> bool:
        return not self.everything and self == TaskFilter()

    def to_json(self) -> dict[str, Any]:
        """The stored form (times as POSIX seconds); fields not given are left out."""
        out: dict[str, Any] = {}
        if self.everything:
            out["all"] = True
        if self.function is not None:
            out["function"] = self.function
        if self.statuses:
            out["status"] = [s.value for s in self.statuses]
        if self.created_after is not None:
            out["created_after"] = self.created_after
        if self.created_before is not None:
            out["created_before"] = self.created_before
        if self.key is not None:
            out["key"] = self.key
        if self.labels:
            out["labels"] = dict(self.labels)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TaskFilter:
        labels = data.get("labels") or {}
        return cls(
            function=data.get("function"),
            statuses=tuple(TaskStatus(s) for s in data.get("status") or ()),
            created_after=data.get("created_after"),
            created_before=data.get("created_before"),
            key=data.get("key"),
            labels=tuple(sorted((str(k), str(v)) for k, v in labels.items())),
            everything=bool(data.get("all", False)),
        )


def acted_on(kind: OperationKind, statuses: tuple[TaskStatus, ...]) -> tuple[TaskStatus, ...]:
    """The statuses `kind` acts on, narrowed to the filter's `statuses` when it names some
    (stop: not ended; rerun and purge: ended). Empty: the operation matches nothing."""
    applicable = STOPPABLE if kind == "stop" else ENDED
    if not statuses:
        return applicable
    return tuple(s for s in applicable if s in statuses)


@dataclass(frozen=True, slots=True)
class Operation:
    """One bulk operation. `total` counts the tasks it matched when created; it walks tasks by
    row, up to `max_row` (the newest row then), past `cursor` (the last row handled).
    Rerun and purge take only tasks that had ended by `created_at`. `owner` runs it while
    `lease_until` lasts; another node may take it over after."""

    id: str
    tenant: str
    kind: OperationKind
    filter: TaskFilter
    status: OperationStatus
    total: int
    done: int
    skipped: int
    cursor: int | None
    max_row: int
    error: str | None
    created_at: float
    updated_at: float
    finished_at: float | None
    owner: str | None = None
    lease_until: float | None = None


@dataclass(frozen=True, slots=True)
class MatchedTask:
    """A task an operation's walk reached: enough to act on it by id."""

    row: int
    id: str
    function: str
    status: TaskStatus
