"""Routes for dead letters (`async.on_dead_letter`): the tenant's list, newest first, and the
one-click rerun of an entry, marked on it so it is rerun once."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from asyncfn.api.deps import node_of, tenant_of
from asyncfn.api.render import json_response
from asyncfn.domain import limits
from asyncfn.domain.deadletters import DeadLetter, DeadLetterCursor
from asyncfn.domain.errors import DuplicateTask, Malformed
from asyncfn.domain.records import rfc3339

router = APIRouter(prefix="/v1/dead-letters", tags=["dead letters"])


def dead_letter_json(entry: DeadLetter) -> dict[str, Any]:
    return {
        "task_id": entry.task_id,
        "function": entry.function,
        "status": entry.status.value,
        "error": entry.error,
        "attempts": entry.attempts,
        "at": rfc3339(entry.at),
        "rerun_as": entry.rerun_as,
        "rerun_at": rfc3339(entry.rerun_at),
    }


@router.get("")
async def list_dead_letters(
    request: Request,
    function: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: str | None = None,
) -> Response:
    """Tasks of functions with `async.on_dead_letter` that ended Failed or Expired for good,
    newest first (`at`: when they did); `rerun_as` names the rerun made from an entry."""
    after = DeadLetterCursor.decode(cursor) if cursor is not None else None
    entries, next_cursor = await node_of(request).store.list_dead_letters(
        tenant_of(request), function, limit, after
    )
    return json_response(
        {
            "items": [dead_letter_json(e) for e in entries],
            "next_cursor": next_cursor.encode() if next_cursor is not None else None,
        }
    )


@router.post("/{task_id}:rerun", status_code=202)
async def rerun_dead_letter(task_id: str, request: Request) -> Response:
    """A new task with the dead letter's payload (`X-Task-Id` names it), linked by rerun_of;
    the entry records it as `rerun_as`. 409 `already_rerun` naming that task the second time."""
    new_id = request.headers.get("x-task-id")
    if new_id is not None and not limits.TASK_ID_RE.match(new_id):
        raise Malformed("X-Task-Id is 1 to 128 letters, digits or . _ : -", field="X-Task-Id")
    control = node_of(request).control
    submitted = await control.rerun_task(tenant_of(request), task_id, new_id, dead_letter=True)
    if not submitted.created:
        raise DuplicateTask(submitted.task_id, submitted.status.value)
    body = {"task_id": submitted.task_id, "status": submitted.status.value, "rerun_of": task_id}
    return json_response(body, 202)
