"""Routes for schedules (timer triggers): create/update, read, list with next fire times, delete."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from asyncfn.api.deps import node_of, tenant_of
from asyncfn.api.render import bytes_value, json_response
from asyncfn.api.schemas import ScheduleIn
from asyncfn.domain import limits
from asyncfn.domain.errors import InvalidInput, PayloadTooLarge
from asyncfn.domain.records import rfc3339
from asyncfn.domain.schedules import Schedule

router = APIRouter(prefix="/v1/schedules", tags=["schedules"])


def schedule_json(schedule: Schedule) -> dict[str, Any]:
    """A schedule over HTTP: times RFC 3339 UTC, the payload as text (or base64)."""
    return {
        "name": schedule.name,
        "function": schedule.function,
        "cron": schedule.cron,
        "every_s": schedule.every_s,
        "timezone": schedule.timezone,
        "payload": bytes_value(schedule.payload),
        "enabled": schedule.enabled,
        "catch_up": schedule.catch_up,
        "last_fire_at": rfc3339(schedule.last_fire_at),
        "next_fire_at": rfc3339(schedule.next_fire_at),
        "created_at": rfc3339(schedule.created_at),
        "updated_at": rfc3339(schedule.updated_at),
    }


def _check_name(name: str) -> None:
    if not limits.NAME_RE.match(name):
        raise InvalidInput(
            "a schedule name is 1 to 64 letters, digits, '-' or '_', starting with a letter",
            field="name",
        )


@router.get("")
async def list_schedules(request: Request) -> Response:
    found = await node_of(request).schedules.of_tenant(tenant_of(request))
    return json_response({"items": [schedule_json(s) for s in found]})


@router.put("/{name}", status_code=200, responses={201: {"description": "created"}})
async def put_schedule(name: str, config: ScheduleIn, request: Request) -> Response:
    _check_name(name)
    node = node_of(request)
    schedule = config.to_schedule(name, tenant_of(request))
    if len(schedule.payload) > node.settings.payload_max_bytes:
        raise PayloadTooLarge(
            f"the payload is over {node.settings.payload_max_bytes} bytes", field="payload"
        )
    stored, created = await node.schedules.put(schedule)
    return json_response(schedule_json(stored), 201 if created else 200)


@router.get("/{name}")
async def get_schedule(name: str, request: Request) -> Response:
    found = await node_of(request).schedules.get(tenant_of(request), name)
    return json_response(schedule_json(found))


@router.delete("/{name}", status_code=204)
async def delete_schedule(name: str, request: Request) -> Response:
    await node_of(request).schedules.delete(tenant_of(request), name)
    return Response(status_code=204)
