"""The client's trigger calls: put, get (with live status), list and delete."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from asyncfn import client_calls as calls
from asyncfn.client_drivers import AsyncDriver, SyncDriver


def _trigger_path(name: str) -> str:
    return f"/v1/triggers/{calls.segment(name)}"


def _put_trigger(name: str, config: Mapping[str, Any]) -> calls.Call[dict[str, Any]]:
    """`PUT /v1/triggers/{name}`: `function`, `type` and the source's settings side by side."""
    return calls.Call("PUT", _trigger_path(name), calls.json_of, json=dict(config))


def _delete_trigger(name: str) -> calls.Call[None]:
    return calls.Call("DELETE", _trigger_path(name), calls.nothing_of)


class TriggersApi(SyncDriver):
    """`Client`'s triggers methods."""

    def put_trigger(self, name: str, **config: Any) -> dict[str, Any]:
        """Create or update a trigger: `function=`, `type=` ("nats", "redis-stream", "amqp",
        "directory") and the source's settings (`stream=`, `queue=`, `path=`, ...)."""
        return self._run(_put_trigger(name, config))

    def get_trigger(self, name: str) -> dict[str, Any]:
        """The trigger with its live `status` (phase, lag, rate, last error)."""
        return self._run(calls.get(_trigger_path(name)))

    def list_triggers(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self._run(calls.get("/v1/triggers"))["items"]
        return items

    def delete_trigger(self, name: str) -> None:
        self._run(_delete_trigger(name))


class AsyncTriggersApi(AsyncDriver):
    """`AsyncClient`'s triggers methods."""

    async def put_trigger(self, name: str, **config: Any) -> dict[str, Any]:
        return await self._run(_put_trigger(name, config))

    async def get_trigger(self, name: str) -> dict[str, Any]:
        return await self._run(calls.get(_trigger_path(name)))

    async def list_triggers(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = (await self._run(calls.get("/v1/triggers")))["items"]
        return items

    async def delete_trigger(self, name: str) -> None:
        await self._run(_delete_trigger(name))
