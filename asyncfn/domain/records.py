"""A finished task's record as destinations receive it, and the RFC 3339 times it (and the API)
shows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from asyncfn.domain.models import Task


def rfc3339(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def duration_ms(task: Task) -> float | None:
    """From the start of the latest attempt to the end; None before both are known."""
    if task.started_at is None or task.finished_at is None:
        return None
    return round((task.finished_at - task.started_at) * 1000, 3)


def task_record(task: Task) -> dict[str, Any]:
    """What a destination receives: the task's outcome and times, without payload or events."""
    return {
        "id": task.id,
        "function": task.function,
        "status": task.status.value,
        "result": task.result,
        "error": task.error,
        "attempt": task.attempt,
        "max_attempts": task.max_attempts,
        "created_at": rfc3339(task.created_at),
        "started_at": rfc3339(task.started_at),
        "finished_at": rfc3339(task.finished_at),
        "duration_ms": duration_ms(task),
    }
