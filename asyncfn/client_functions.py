"""The client's function calls: deploy (config, then code), read, list, delete, pause and
resume a queue, and the function's stats."""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import httpx

from asyncfn import client_calls as calls
from asyncfn.client_drivers import AsyncDriver, SyncDriver
from asyncfn.runtime.bundles import zip_directory


def _function_config(
    handler: str | None,
    command: str | Iterable[str] | None,
    runtime: str | None,
    config: Mapping[str, Any],
) -> dict[str, Any]:
    """The PUT body; `async_=` stands for the `async` key, a command string is shlex-split."""
    body = {("async" if k == "async_" else k): v for k, v in config.items()}
    if command is not None:
        body["command"] = shlex.split(command) if isinstance(command, str) else list(command)
    if handler is not None:
        body["handler"] = handler
    body["runtime"] = runtime or ("command" if command is not None else "python")
    return body


def _code_bytes(code: bytes | Path) -> bytes:
    """Code to upload: zip bytes as given, a zip file's bytes, or a directory zipped."""
    if isinstance(code, bytes | bytearray):
        return bytes(code)
    return zip_directory(code) if code.is_dir() else code.read_bytes()


def _stats_path(name: str) -> str:
    return f"{calls.function_path(name)}/stats"


def _put_function(name: str, config: dict[str, Any]) -> calls.Call[dict[str, Any]]:
    return calls.Call("PUT", calls.function_path(name), calls.json_of, json=config)


def _put_code(name: str, data: bytes) -> calls.Call[str]:
    def sha256_of(response: httpx.Response) -> str:
        return str(calls.json_of(response)["sha256"])

    headers = {"Content-Type": "application/zip"}
    return calls.Call(
        "PUT", f"{calls.function_path(name)}/code", sha256_of, headers=headers, content=data
    )


def _delete_function(name: str) -> calls.Call[None]:
    return calls.Call("DELETE", calls.function_path(name), calls.nothing_of)


def _function_action(name: str, action: Literal["suspend", "resume"]) -> calls.Call[dict[str, Any]]:
    """`POST /v1/functions/{name}:{action}`; answers the function."""
    return calls.Call("POST", f"{calls.function_path(name)}:{action}", calls.json_of)


def _deploy_flow(
    name: str, config: dict[str, Any], code: bytes | Path | None
) -> calls.Flow[dict[str, Any]]:
    """PUT the config, then the code (read or zipped before any request is sent)."""
    data = _code_bytes(code) if code is not None else None
    function: dict[str, Any] = yield _put_function(name, config)
    if data is not None:
        sha256 = yield _put_code(name, data)
        function = {**function, "code_sha256": sha256}
    return function


class FunctionsApi(SyncDriver):
    """`Client`'s functions methods."""

    def deploy(
        self,
        name: str,
        *,
        handler: str | None = None,
        command: str | Iterable[str] | None = None,
        runtime: str | None = None,
        code: bytes | Path | None = None,
        **config: Any,
    ) -> dict[str, Any]:
        """Create or update a function, then upload its code (a directory is zipped).

        `config` holds the API's fields (`timeout_s`, `memory_mb`, ...; `async_` for `async`),
        e.g. `debounce={"key": "/doc_id", "window_s": 2, "max_wait_s": 30}` or
        `throttle={"key": "tenant", "per_s": 5, "burst": 10}` (docs/debounce-throttle.md) or
        `concurrency=[{"key": "/customer_id", "limit": 2, "strategy": "queue"}]`
        (docs/concurrency.md).
        Answers the function, with `code_sha256` of the code just uploaded.
        """
        body = _function_config(handler, command, runtime, config)
        return self._drive(_deploy_flow(name, body, code))

    def get_function(self, name: str) -> dict[str, Any]:
        return self._run(calls.get(calls.function_path(name)))

    def function_stats(self, name: str) -> dict[str, Any]:
        """`GET /v1/functions/{name}/stats`: queued, delayed, running, instances, rates,
        latency percentiles, limits and the busiest concurrency keys (the route's docs list
        every field)."""
        return self._run(calls.get(_stats_path(name)))

    def list_functions(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self._run(calls.get("/v1/functions"))["items"]
        return items

    def delete_function(self, name: str) -> None:
        self._run(_delete_function(name))

    def upload_code(self, name: str, data: bytes | Path) -> str:
        """Upload a zip (bytes, a zip file, or a directory to zip); answers its sha256."""
        return self._run(_put_code(name, _code_bytes(data)))

    def suspend_function(self, name: str) -> dict[str, Any]:
        """Pause a function's queue: its tasks are accepted but not started; answers it."""
        return self._run(_function_action(name, "suspend"))

    def resume_function(self, name: str) -> dict[str, Any]:
        """Let a paused function's queue run again; answers the function."""
        return self._run(_function_action(name, "resume"))


class AsyncFunctionsApi(AsyncDriver):
    """`AsyncClient`'s functions methods."""

    async def deploy(
        self,
        name: str,
        *,
        handler: str | None = None,
        command: str | Iterable[str] | None = None,
        runtime: str | None = None,
        code: bytes | Path | None = None,
        **config: Any,
    ) -> dict[str, Any]:
        body = _function_config(handler, command, runtime, config)
        return await self._drive(_deploy_flow(name, body, code))

    async def get_function(self, name: str) -> dict[str, Any]:
        return await self._run(calls.get(calls.function_path(name)))

    async def function_stats(self, name: str) -> dict[str, Any]:
        return await self._run(calls.get(_stats_path(name)))

    async def list_functions(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = (await self._run(calls.get("/v1/functions")))["items"]
        return items

    async def delete_function(self, name: str) -> None:
        await self._run(_delete_function(name))

    async def upload_code(self, name: str, data: bytes | Path) -> str:
        return await self._run(_put_code(name, _code_bytes(data)))

    async def suspend_function(self, name: str) -> dict[str, Any]:
        return await self._run(_function_action(name, "suspend"))

    async def resume_function(self, name: str) -> dict[str, Any]:
        return await self._run(_function_action(name, "resume"))
