"""The client's schedule calls: put, get, list and delete."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from asyncfn import client_calls as calls
from asyncfn.client_drivers import AsyncDriver, SyncDriver


def _schedule_path(name: str) -> str:
    return f"/v1/schedules/{calls.segment(name)}"


def _put_schedule(name: str, config: Mapping[str, Any]) -> calls.Call[dict[str, Any]]:
    """`PUT /v1/schedules/{name}`; a bytes payload travels as its UTF-8 text."""
    body = dict(config)
    if "payload" in body:
        body["payload"] = calls.json_payload(body["payload"])
    return calls.Call("PUT", _schedule_path(name), calls.json_of, json=body)


def _delete_schedule(name: str) -> calls.Call[None]:
    return calls.Call("DELETE", _schedule_path(name), calls.nothing_of)


class SchedulesApi(SyncDriver):
    """`Client`'s schedules methods."""

    def put_schedule(self, name: str, **config: Any) -> dict[str, Any]:
        """Create or update a schedule: `function=`, `cron=` or `every_s=`, and optionally
        `payload=`, `timezone=`, `enabled=`, `catch_up=`; answers it with `next_fire_at`."""
        return self._run(_put_schedule(name, config))

    def get_schedule(self, name: str) -> dict[str, Any]:
        return self._run(calls.get(_schedule_path(name)))

    def list_schedules(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self._run(calls.get("/v1/schedules"))["items"]
        return items

    def delete_schedule(self, name: str) -> None:
        self._run(_delete_schedule(name))


class AsyncSchedulesApi(AsyncDriver):
    """`AsyncClient`'s schedules methods."""

    async def put_schedule(self, name: str, **config: Any) -> dict[str, Any]:
        return await self._run(_put_schedule(name, config))

    async def get_schedule(self, name: str) -> dict[str, Any]:
        return await self._run(calls.get(_schedule_path(name)))

    async def list_schedules(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = (await self._run(calls.get("/v1/schedules")))["items"]
        return items

    async def delete_schedule(self, name: str) -> None:
        await self._run(_delete_schedule(name))
