"""Routes for tasks: one task with its events, the filtered list, and its logs (optionally
followed as server-sent events until the task ends)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, Response
from starlette.responses import StreamingResponse

from asyncfn.api.deps import NodeServices, node_of, tenant_of
from asyncfn.api.render import json_response, log_json, parse_rfc3339, task_json
from asyncfn.domain import limits
from asyncfn.domain.errors import DuplicateTask, Malformed, NotFound
from asyncfn.domain.models import TaskQuery
from asyncfn.domain.records import rfc3339
from asyncfn.domain.states import TaskStatus
from asyncfn.store.base import Control

router = APIRouter(prefix="/v1/tasks", tags=["tasks"])

FOLLOW_POLL_S = 0.1
CALLER = "api"


def _time(value: str | None, field: str) -> float | None:
    if value is None:
        return None
    try:
        return parse_rfc3339(value)
    except ValueError as exc:
        raise Malformed(f"not an RFC 3339 time: {value!r}", field=field) from exc


def _is_seq(text: str) -> bool:
    """Whether `text` is a sequence number a store can hold: ASCII digits up to `SEQ_MAX`
    (`str.isdigit` alone also takes "²" and numbers past 64 bits)."""
    return text.isascii() and text.isdigit() and int(text) <= limits.SEQ_MAX


@router.get("")
async def list_tasks(
    request: Request,
    function: str | None = None,
    status: TaskStatus | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: str | None = None,
) -> Response:
    if cursor is not None and not _is_seq(cursor):
        raise Malformed("cursor is the next_cursor of a previous page", field="cursor")
    query = TaskQuery(
        tenant=tenant_of(request),
        function=function,
        status=status,
        since=_time(since, "since"),
        until=_time(until, "until"),
        limit=limit,
        cursor=int(cursor) if cursor is not None else None,
    )
    tasks, next_cursor = await node_of(request).store.list_tasks(query)
    return json_response(
        {
            "items": [task_json(t, full=False) for t in tasks],
            "next_cursor": str(next_cursor) if next_cursor is not None else None,
        }
    )


@router.get("/{task_id}")
async def get_task(task_id: str, request: Request) -> Response:
    task = await node_of(request).store.get_task(tenant_of(request), task_id)
    if task is None:
        raise NotFound("task", task_id)
    return json_response(task_json(task))


LOGS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The task's log lines after `after` and its status as JSON; with "
        "`follow=true`, server-sent events: a `log` event per line, then an `end` event.",
        "content": {
            "text/event-stream": {
                "schema": {
                    "type": "object",
                    "description": "one event: `data` is a log line as JSON (`id` its seq), or "
                    'for the `end` event `{"status": ...}`',
                    "properties": {
                        "event": {"type": "string", "enum": ["log", "end"]},
                        "id": {"type": "string"},
                        "data": {"type": "string"},
                    },
                    "required": ["event", "data"],
                }
            }
        },
    }
}


@router.get("/{task_id}/logs", responses=LOGS_RESPONSES)
async def get_logs(
    task_id: str,
    request: Request,
    after: Annotated[int, Query(ge=0, le=limits.SEQ_MAX)] = 0,
    follow: bool = False,
) -> Response:
    node = node_of(request)
    tenant = tenant_of(request)
    task = await node.store.get_task(tenant, task_id)
    if task is None:
        raise NotFound("task", task_id)
    if follow:
        return StreamingResponse(
            _follow(node, tenant, task_id, after),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache"},
        )
    lines = await node.store.read_logs(tenant, task_id, after) or []
    return json_response({"items": [log_json(line) for line in lines], "status": task.status.value})


async def _follow(
    node: NodeServices, tenant: str, task_id: str, after: int
) -> AsyncIterator[bytes]:
    """Server-sent events: one `log` event per line, then one `end` event with the status."""
    while True:
        task = await node.store.get_task(tenant, task_id)
        lines = await node.store.read_logs(tenant, task_id, after) or []
        for line in lines:
            after = line.seq
            yield b"event: log\nid: %d\ndata: %s\n\n" % (line.seq, orjson.dumps(log_json(line)))
        if task is None or (task.status.terminal and not lines):
            status = task.status.value if task is not None else None
            yield b"event: end\ndata: %s\n\n" % orjson.dumps({"status": status})
            return
        if not lines:
            await asyncio.sleep(FOLLOW_POLL_S)


def _control_json(ctl: Control) -> dict[str, str]:
    return {"task_id": ctl.id, "status": ctl.status.value}


@router.post("/{task_id}:stop")
async def stop_task(task_id: str, request: Request) -> Response:
    """Stop a task: queued → Stopped at once; running → Stopping → Stopped (SIGTERM to its
    process group, SIGKILL after the function's stop_grace_s). Answers once it is Stopped."""
    ctl = await node_of(request).control.stop_task(tenant_of(request), task_id, CALLER)
    return json_response(_control_json(ctl))


@router.post("/{task_id}:suspend")
async def suspend_task(task_id: str, request: Request) -> Response:
    """Suspend a task: a queued one is held out of dispatch, a running one frozen (SIGSTOP)."""
    ctl = await node_of(request).control.suspend_task(tenant_of(request), task_id, CALLER)
    return json_response(_control_json(ctl))


@router.post("/{task_id}:resume")
async def resume_task(task_id: str, request: Request) -> Response:
    """Resume a suspended task: back to Running (SIGCONT) or to the queue."""
    ctl = await node_of(request).control.resume_task(tenant_of(request), task_id, CALLER)
    return json_response(_control_json(ctl))


@router.post("/{task_id}:purge")
async def purge_task(task_id: str, request: Request) -> Response:
    """Erase an ended task's payload, result, checkpoint, traceback, progress message and logs
    from the store (its status, events and timings stay). Answers what was erased and when;
    purging again answers the first purge's time. 409 while the task has not ended."""
    purged = await node_of(request).control.purge_task(tenant_of(request), task_id)
    body = {
        "task_id": purged.task_id,
        "purged_at": rfc3339(purged.purged_at),
        "purged": list(purged.purged),
    }
    return json_response(body)


@router.post("/{task_id}:rerun", status_code=202)
async def rerun_task(task_id: str, request: Request) -> Response:
    """A new task with this ended task's payload (`X-Task-Id` names it), linked by rerun_of."""
    new_id = request.headers.get("x-task-id")
    if new_id is not None and not limits.TASK_ID_RE.match(new_id):
        raise Malformed("X-Task-Id is 1 to 128 letters, digits or . _ : -", field="X-Task-Id")
    submitted = await node_of(request).control.rerun_task(tenant_of(request), task_id, new_id)
    if not submitted.created:
        raise DuplicateTask(submitted.task_id, submitted.status.value)
    body = {"task_id": submitted.task_id, "status": submitted.status.value, "rerun_of": task_id}
    return json_response(body, 202)
