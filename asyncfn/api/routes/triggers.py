"""Routes for triggers (event sources): create/update, read, list with each trigger's live
figures on this node (phase, lag, rate, last error), delete."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request, Response

from asyncfn.api.deps import node_of, tenant_of
from asyncfn.api.render import json_response
from asyncfn.api.schemas import TriggerIn
from asyncfn.domain import limits
from asyncfn.domain.errors import InvalidInput
from asyncfn.domain.records import rfc3339
from asyncfn.domain.triggers import Trigger
from asyncfn.engine.triggers.runner import TriggerRunner

router = APIRouter(prefix="/v1/triggers", tags=["triggers"])


def trigger_json(trigger: Trigger, runner: TriggerRunner) -> dict[str, Any]:
    """A trigger over HTTP: its config with the source settings beside it (as they are put),
    and `status`, what it does on this node."""
    state = runner.state(trigger)
    return {
        **trigger.settings,
        "name": trigger.name,
        "function": trigger.function,
        "type": trigger.type,
        "enabled": trigger.enabled,
        "max_queue_depth": trigger.max_queue_depth,
        "created_at": rfc3339(trigger.created_at),
        "updated_at": rfc3339(trigger.updated_at),
        "status": {
            "phase": state.phase,
            "lag": state.lag,
            "rate_per_s": round(state.rate(time.time()), 3),
            "created": state.created,
            "duplicates": state.duplicates,
            "last_commit_at": rfc3339(state.last_commit_at),
            "last_error": state.last_error,
            "last_error_at": rfc3339(state.last_error_at),
            "restarts": state.restarts,
            "retry_at": rfc3339(state.retry_at),
        },
    }


def _check_name(name: str) -> None:
    if not limits.NAME_RE.match(name):
        raise InvalidInput(
            "a trigger name is 1 to 64 letters, digits, '-' or '_', starting with a letter",
            field="name",
        )


@router.get("")
async def list_triggers(request: Request) -> Response:
    runner = node_of(request).triggers
    found = await runner.of_tenant(tenant_of(request))
    return json_response({"items": [trigger_json(t, runner) for t in found]})


@router.put("/{name}", status_code=200, responses={201: {"description": "created"}})
async def put_trigger(name: str, config: TriggerIn, request: Request) -> Response:
    _check_name(name)
    runner = node_of(request).triggers
    try:
        stored, created = await runner.put(config.to_trigger(name, tenant_of(request)))
    except InvalidInput as exc:
        # the source settings sit beside `function` and `type` in the body: name them so
        if exc.field is not None:
            exc.field = exc.field.removeprefix("settings.")
        raise
    return json_response(trigger_json(stored, runner), 201 if created else 200)


@router.get("/{name}")
async def get_trigger(name: str, request: Request) -> Response:
    runner = node_of(request).triggers
    found = await runner.get(tenant_of(request), name)
    return json_response(trigger_json(found, runner))


@router.delete("/{name}", status_code=204)
async def delete_trigger(name: str, request: Request) -> Response:
    await node_of(request).triggers.delete(tenant_of(request), name)
    return Response(status_code=204)
