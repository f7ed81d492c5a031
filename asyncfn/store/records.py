"""The records the `Store` methods take and answer (re-exported by `asyncfn.store.base`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from asyncfn.domain.outcomes import Resources
from asyncfn.domain.states import TaskStatus


@dataclass(frozen=True, slots=True)
class Finish:
    """The end of attempt `attempt` of `row` in a terminal status (Succeeded, Failed, Stopped)."""

    row: int
    attempt: int
    status: TaskStatus
    at: float
    result: Any = None
    error: dict[str, Any] | None = None
    duration_ms: float | None = None
    resources: Resources | None = None
    detail: dict[str, Any] | None = None
    instance_started_at: float | None = None


@dataclass(frozen=True, slots=True)
class RetryLater:
    """The end of a failed attempt: → Retrying until `run_at`, keeping its error."""

    row: int
    attempt: int
    at: float
    run_at: float
    error: dict[str, Any]
    duration_ms: float | None = None
    resources: Resources | None = None
    detail: dict[str, Any] | None = None
    instance_started_at: float | None = None


@dataclass(frozen=True, slots=True)
class LostTask:
    """A task holding a lease (Running, Stopping, or Suspended while running) whose node is gone
    (its lease expired, or the node restarted)."""

    row: int
    id: str
    tenant: str
    function: str
    status: TaskStatus
    attempt: int
    max_attempts: int
    node: str | None
    started_at: float | None


@dataclass(frozen=True, slots=True)
class Control:
    """The answer of a control transition (stop, suspend, resume) on one task.

    `status` is the task's status after the call; `changed` False means the transition was
    refused (the task was already past it) and nothing was written. `node` and `attempt` say
    where the live attempt runs, when there is one (`live`), so the engine can signal it."""

    row: int
    id: str
    function: str
    previous: TaskStatus
    status: TaskStatus
    changed: bool
    live: bool
    node: str | None
    attempt: int


@dataclass(frozen=True, slots=True)
class NewLogLine:
    row: int
    at: float
    stream: str
    line: str


PURGED_FIELDS = ("payload", "result", "checkpoint", "error.traceback", "progress.message", "logs")
"""What a purge erases from an ended task (its status, times, events, attempts' timings and
its error's type and message stay: the state history)."""


@dataclass(frozen=True, slots=True)
class PurgeResult:
    """The answer of `purge_task`: when the task's data was first purged and what was erased.
    `changed` False: it had been purged already (purging again erases any late log line)."""

    task_id: str
    purged_at: float
    purged: tuple[str, ...]
    changed: bool
