"""A task's timeline: where its time went (queued, cold start, running per attempt, suspended,
delivering), computed purely from its events, attempts and deliveries."""

from __future__ import annotations

from dataclasses import dataclass

from asyncfn.domain.models import Task
from asyncfn.domain.states import TaskStatus


@dataclass(frozen=True, slots=True)
class Timeline:
    queued_ms: float
    cold_start_ms: float | None
    running_ms: tuple[float, ...]
    suspended_ms: float
    delivering_ms: float | None


def _ms(seconds: float) -> float:
    return round(max(0.0, seconds) * 1000, 3)


def _time_in(task: Task, status: TaskStatus, now: float) -> float:
    """Seconds spent in `status`: each event into it until the next event (or `now`)."""
    total = 0.0
    events = task.events
    for i, event in enumerate(events):
        if event.status != status.value:
            continue
        end = events[i + 1].at if i + 1 < len(events) else (task.finished_at or now)
        total += max(0.0, end - event.at)
    return total


def timeline(task: Task, now: float) -> Timeline:
    """`now` closes what is still open (a task waiting, running or suspended)."""
    running = tuple(
        _ms((a.finished_at if a.finished_at is not None else now) - a.started_at)
        for a in task.attempts
    )
    cold = [a for a in task.attempts if a.instance_started_at is not None]
    cold_start_ms = None
    if cold:
        last = cold[-1]
        assert last.instance_started_at is not None
        cold_start_ms = _ms(last.instance_started_at - last.started_at)
    delivered = [d.delivered_at for d in task.deliveries if d.delivered_at is not None]
    delivering_ms = (
        _ms(max(delivered) - task.finished_at)
        if delivered and task.finished_at is not None
        else None
    )
    return Timeline(
        queued_ms=_ms(_time_in(task, TaskStatus.ENQUEUED, now)),
        cold_start_ms=cold_start_ms,
        running_ms=running,
        suspended_ms=_ms(_time_in(task, TaskStatus.SUSPENDED, now)),
        delivering_ms=delivering_ms,
    )
