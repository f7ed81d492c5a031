"""The task state machine: every status, who moves a task out of it, and the one transition table.

The store's guards, the API's 409 and `docs/states.md` all read `TRANSITIONS`.
"""

from __future__ import annotations

from enum import StrEnum


class TaskStatus(StrEnum):
    """A task's status; the names match Function Compute's task mode."""

    ENQUEUED = "Enqueued"
    """Accepted and durable, waiting for `run_at` and capacity. Left by the dispatcher (claim →
    Running, or → Expired past max event age), by control (stop, suspend) and by function
    deletion (→ Invalid)."""

    RUNNING = "Running"
    """Claimed by a node and handed to an instance. Left by the completer (outcome → Succeeded,
    Retrying or Failed), by control (stop → Stopping, suspend → Suspended) and by the janitor
    (lost lease → Retrying or Failed)."""

    RETRYING = "Retrying"
    """An attempt failed and attempts are left; waits for its backoff `run_at`. Left by the
    scheduler's promoter (→ Enqueued) and by control (stop, suspend) or expiry."""

    SUSPENDED = "Suspended"
    """Held by a user: a queued task is kept out of dispatch, a running task is frozen with
    SIGSTOP. Left by control (resume → Enqueued or Running, stop), and by the completer when a
    running attempt had already ended as the freeze came (→ Succeeded, Retrying or Failed)."""

    STOPPING = "Stopping"
    """A stop reached a running task; its process group is being terminated. Left by control
    when the process is gone (→ Stopped)."""

    SUCCEEDED = "Succeeded"
    """Terminal: the handler returned."""

    FAILED = "Failed"
    """Terminal: the last attempt failed, or the error is not retryable."""

    STOPPED = "Stopped"
    """Terminal: stopped by a user before it ended."""

    EXPIRED = "Expired"
    """Terminal: not started within the function's max event age."""

    INVALID = "Invalid"
    """Terminal: accepted but cannot run any more (its function was deleted)."""

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL: frozenset[TaskStatus] = frozenset(
    {
        TaskStatus.SUCCEEDED,
        TaskStatus.FAILED,
        TaskStatus.STOPPED,
        TaskStatus.EXPIRED,
        TaskStatus.INVALID,
    }
)

S = TaskStatus
TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    S.ENQUEUED: frozenset({S.RUNNING, S.STOPPED, S.SUSPENDED, S.EXPIRED, S.INVALID}),
    S.RUNNING: frozenset({S.SUCCEEDED, S.FAILED, S.RETRYING, S.SUSPENDED, S.STOPPING, S.INVALID}),
    S.RETRYING: frozenset({S.ENQUEUED, S.STOPPED, S.SUSPENDED, S.EXPIRED, S.INVALID}),
    S.SUSPENDED: frozenset(
        {
            S.ENQUEUED,
            S.RUNNING,
            S.STOPPED,
            S.STOPPING,
            S.SUCCEEDED,
            S.RETRYING,
            S.FAILED,
            S.INVALID,
        }
    ),
    S.STOPPING: frozenset({S.STOPPED}),
    S.SUCCEEDED: frozenset(),
    S.FAILED: frozenset(),
    S.STOPPED: frozenset(),
    S.EXPIRED: frozenset(),
    S.INVALID: frozenset(),
}

QUEUED: frozenset[TaskStatus] = frozenset({S.ENQUEUED, S.RETRYING})
"""Statuses of a task that is waiting and holds no instance."""


def sources_of(target: TaskStatus) -> frozenset[TaskStatus]:
    """Every status a task may move to `target` from: the guard of that transition."""
    return frozenset(src for src, targets in TRANSITIONS.items() if target in targets)


def can_move(source: TaskStatus, target: TaskStatus) -> bool:
    return target in TRANSITIONS[source]


def states_markdown() -> str:
    """`docs/states.md`, generated from the statuses' docstrings and `TRANSITIONS`."""
    lines = [
        "# Task states",
        "",
        "Generated from `asyncfn/domain/states.py` by `make docs`; do not edit by hand.",
        "",
        "| status | terminal | may move to |",
        "| --- | --- | --- |",
    ]
    for status in TaskStatus:
        targets = ", ".join(t.value for t in TaskStatus if t in TRANSITIONS[status]) or "—"
        lines.append(f"| {status.value} | {'yes' if status.terminal else 'no'} | {targets} |")
    lines += ["", "```mermaid", "stateDiagram-v2"]
    for status in TaskStatus:
        for target in TaskStatus:
            if target in TRANSITIONS[status]:
                lines.append(f"    {status.value} --> {target.value}")
    lines += ["```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(states_markdown(), end="")
