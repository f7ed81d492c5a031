"""Columns ⇄ domain records for the SQLite store: JSON text columns and row tuples."""

from __future__ import annotations

from typing import Any

import orjson

from asyncfn.domain.models import Attempt, ClaimedTask, FunctionSpec, Task, TaskEvent
from asyncfn.domain.states import TaskStatus
from asyncfn.store.base import LostTask

FUNCTION_COLUMNS = ("tenant", "name", "code_sha256", "created_at", "updated_at", "paused")
"""Kept in their own columns, so left out of the `config` JSON."""


def json_text(value: Any) -> str | None:
    """A JSON column's text; None stays SQL NULL."""
    return None if value is None else orjson.dumps(value).decode()


def json_value(text: str | bytes | None) -> Any:
    return None if text is None else orjson.loads(text)


def function_config(spec: FunctionSpec) -> str:
    config = spec.to_config()
    for column in FUNCTION_COLUMNS:
        config.pop(column, None)
    return orjson.dumps(config).decode()


def function_from_row(row: tuple[Any, ...]) -> FunctionSpec:
    """From the seven columns `get_function` selects (or `set_function_code` returns)."""
    tenant, name, config, code_sha256, created_at, updated_at, paused = row
    return FunctionSpec.from_config(
        {
            **orjson.loads(config),
            "tenant": tenant,
            "name": name,
            "code_sha256": code_sha256,
            "created_at": float(created_at),
            "updated_at": float(updated_at),
            "paused": bool(paused),
        }
    )


def task_from_row(
    row: tuple[Any, ...],
    events: tuple[TaskEvent, ...] = (),
    attempts: tuple[Attempt, ...] = (),
) -> Task:
    """A task from the 20 columns that `get_task` and `list_tasks` select, in their order
    (`get_task` adds a 21st, the attributes)."""
    attributes = json_value(row[20]) if len(row) > 20 else None
    (
        row_id,
        task_id,
        tenant,
        function,
        status,
        attempt,
        max_attempts,
        priority,
        payload,
        created_at,
        run_at,
        started_at,
        finished_at,
        result,
        error,
        progress,
        checkpoint,
        instance_id,
        node,
        rerun_of,
    ) = row[:20]
    return Task(
        row=row_id,
        id=task_id,
        tenant=tenant,
        function=function,
        status=TaskStatus(status),
        attempt=attempt,
        max_attempts=max_attempts,
        priority=priority,
        payload=bytes(payload),
        created_at=created_at,
        run_at=run_at,
        started_at=started_at,
        finished_at=finished_at,
        result=json_value(result),
        error=json_value(error),
        progress=json_value(progress),
        checkpoint=json_value(checkpoint),
        instance_id=instance_id,
        node=node,
        rerun_of=rerun_of,
        attributes=attributes,
        events=events,
        attempts=attempts,
    )


def event_from_row(row: tuple[Any, ...]) -> TaskEvent:
    status, at, detail = row
    return TaskEvent(status=status, at=at, detail=json_value(detail))


def attempt_from_row(row: tuple[Any, ...]) -> Attempt:
    number, started_at, finished_at, instance_id, node, outcome, error, cpu_ms, rss = row[:9]
    return Attempt(
        number=number,
        started_at=started_at,
        finished_at=finished_at,
        instance_id=instance_id,
        node=node,
        outcome=outcome,
        error=json_value(error),
        cpu_ms=cpu_ms,
        max_rss_mb=rss,
        instance_started_at=row[9],
    )


def claimed_from_row(row: tuple[Any, ...]) -> ClaimedTask:
    """From `claim_ready`'s RETURNING columns (priority is only its sort key; attributes,
    the 13th, may be left out).

    RETURNING can hand back a whole-number REAL as an int, hence the `float()`s."""
    row_id, task_id, tenant, function, attempt, max_attempts, payload, created, started = row[:9]
    return ClaimedTask(
        row=row_id,
        id=task_id,
        tenant=tenant,
        function=function,
        attempt=attempt,
        max_attempts=max_attempts,
        payload=bytes(payload),
        created_at=float(created),
        started_at=float(started),
        checkpoint=json_value(row[9]),
        run_at=float(row[11]),
        attributes=json_value(row[12]) if len(row) > 12 else None,
    )


def lost_from_row(row: tuple[Any, ...]) -> LostTask:
    row_id, task_id, tenant, function, status, attempt, max_attempts, node, started_at = row
    return LostTask(
        row=row_id,
        id=task_id,
        tenant=tenant,
        function=function,
        status=TaskStatus(status),
        attempt=attempt,
        max_attempts=max_attempts,
        node=node,
        started_at=started_at,
    )
