"""`Client` and `AsyncClient`: a node's HTTP API over httpx, blocking or awaited; HTTP only.

Both build their requests and read their answers through `client_calls`, so only the drivers
below (send a request, pause) differ between them. Errors (from `client_errors`):

    ApiError                 any error answer: status_code, code, message, field, body
    ├── NotFoundError        404
    ├── ConflictError        409; .existing_task_id, .existing_status name the task in the way
    ├── TaskFailed           the task ended in a terminal status other than Succeeded
    └── TaskTimeout          the wait ended first; the task keeps running

Transport failures (connection refused, a client-side timeout) stay httpx's own errors.
Task handles are in `client_handles`.
"""
# AsyncClient keeps Client's `timeout=` parameters: they bound server-side waits and polling.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from asyncfn import client_calls as calls
from asyncfn.client_calls import DEFAULT_URL, MAX_POLL_S, BatchItem, When
from asyncfn.client_errors import ApiError, ConflictError, NotFoundError, TaskFailed, TaskTimeout
from asyncfn.client_handles import AsyncTaskHandle, TaskHandle

__all__ = [
    "DEFAULT_URL",
    "ApiError",
    "AsyncClient",
    "AsyncTaskHandle",
    "BatchItem",
    "Client",
    "ConflictError",
    "NotFoundError",
    "TaskFailed",
    "TaskHandle",
    "TaskTimeout",
]

T = TypeVar("T")


class Client:
    """The blocking client. `transport` replaces httpx's (e.g. `httpx.MockTransport`)."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        api_key: str | None = None,
        timeout: float | httpx.Timeout | None = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url,
            headers=calls.default_headers(api_key),
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # drivers: the only code that differs from AsyncClient

    def _run(self, call: calls.Call[T]) -> T:
        return call.parse(self._http.send(call.request(self._http)))

    def _step(self, step: calls.Step) -> Any:
        if isinstance(step, calls.Call):
            return self._run(step)
        time.sleep(step)
        return None

    def _drive(self, flow: calls.Flow[T]) -> T:
        answer: Any = None
        while True:
            try:
                step = flow.send(answer)
            except StopIteration as stop:
                value: T = stop.value
                return value
            answer = self._step(step)

    def _iterate(self, flow: calls.Stream) -> Iterator[Any]:
        answer: Any = None
        while True:
            try:
                step = flow.send(answer)
            except StopIteration:
                return
            if isinstance(step, calls.Emit):
                answer = None
                yield step.item
            else:
                answer = self._step(step)

    # functions

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

        `config` holds the API's fields (`timeout_s`, `memory_mb`, ...; `async_` for `async`).
        Answers the function, with `code_sha256` of the code just uploaded.
        """
        body = calls.function_config(handler, command, runtime, config)
        return self._drive(calls.deploy_flow(name, body, code))

    def get_function(self, name: str) -> dict[str, Any]:
        return self._run(calls.get(calls.function_path(name)))

    def list_functions(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self._run(calls.get("/v1/functions"))["items"]
        return items

    def delete_function(self, name: str) -> None:
        self._run(calls.delete_function(name))

    def upload_code(self, name: str, data: bytes | Path) -> str:
        """Upload a zip (bytes, a zip file, or a directory to zip); answers its sha256."""
        return self._run(calls.put_code(name, calls.code_bytes(data)))

    # invocations

    def invoke_async(
        self,
        name: str,
        payload: Any = b"",
        *,
        task_id: str | None = None,
        delay_s: float | None = None,
        run_at: When | None = None,
        priority: int | None = None,
    ) -> TaskHandle:
        """Submit one task. Payload: bytes as is, str as UTF-8, anything else as JSON.

        A `task_id` already used raises ConflictError naming the existing task and status.
        """
        call = calls.invoke_async(name, payload, task_id, delay_s, run_at, priority)
        answer = self._run(call)
        return TaskHandle(answer["task_id"], answer["status"], self)

    def invoke_batch(self, name: str, items: Iterable[BatchItem | Any]) -> list[TaskHandle]:
        """Submit up to 1,000 tasks in one transaction; handles in the order of `items`."""
        answer = self._run(calls.invoke_batch(name, items))
        return [TaskHandle(i["task_id"], i["status"], self, i["created"]) for i in answer["items"]]

    def invoke(self, name: str, payload: Any = b"", *, timeout: float | None = None) -> Any:
        """Run one task and answer its result; TaskFailed if it failed, TaskTimeout on 504.

        The server bounds the wait (504 past it); `timeout` also bounds the client's own wait
        for the answer (httpx.ReadTimeout past it). Either way the task keeps running.
        """
        return self._run(calls.invoke_sync(name, payload, timeout))

    # tasks

    def get_task(self, task_id: str) -> dict[str, Any]:
        return self._run(calls.get(calls.task_path(task_id)))

    def list_tasks(
        self,
        function: str | None = None,
        status: str | None = None,
        since: When | None = None,
        until: When | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """One page, newest first: `{"items": [...], "next_cursor": ... | None}`."""
        params = calls.task_params(function, status, since, until, limit, cursor)
        return self._run(calls.get("/v1/tasks", params))

    def iter_tasks(
        self,
        function: str | None = None,
        status: str | None = None,
        since: When | None = None,
        until: When | None = None,
        page_size: int = 100,
    ) -> Iterator[dict[str, Any]]:
        """Every matching task, newest first, fetching pages as it goes."""
        params = calls.task_params(function, status, since, until, page_size, None)
        return self._iterate(calls.pages_flow(params))

    def logs(self, task_id: str, after: int = 0) -> list[dict[str, Any]]:
        """Log lines `{"seq", "at", "stream", "line"}` with seq > `after`."""
        items: list[dict[str, Any]] = self._run(calls.logs(task_id, after))["items"]
        return items

    def follow_logs(
        self, task_id: str, poll_s: float = 0.2, after: int = 0
    ) -> Iterator[dict[str, Any]]:
        """Log lines as they come, until the task is terminal and every line is out."""
        return self._iterate(calls.follow_flow(task_id, after, poll_s))

    def wait(
        self, task_id: str, timeout: float | None = None, poll_s: float = MAX_POLL_S
    ) -> dict[str, Any]:
        """The task once terminal; polls 5 ms apart, doubling up to `poll_s`."""
        return self._drive(calls.wait_flow(task_id, timeout, poll_s))

    # control

    def stop(self, task_id: str, *, timeout: float | None = None) -> dict[str, Any]:
        """Stop a task; answers `{"task_id", "status"}`, "Stopped" or still "Stopping".

        The server waits for the task to stop, up to the function's stop grace and a few
        seconds; `timeout` bounds the client's own wait (httpx.ReadTimeout past it). A task
        already ended raises ConflictError (`transition_refused`, `.existing_status`).
        """
        return self._run(calls.stop(task_id, timeout))

    def suspend(self, task_id: str) -> dict[str, Any]:
        """Suspend a task until resumed; answers `{"task_id", "status": "Suspended"}`."""
        return self._run(calls.task_action(task_id, "suspend"))

    def resume(self, task_id: str) -> dict[str, Any]:
        """Resume a suspended task; answers `{"task_id", "status": "Running" | "Enqueued"}`."""
        return self._run(calls.task_action(task_id, "resume"))

    def rerun(self, rerun_of: str, /, *, task_id: str | None = None) -> TaskHandle:
        """A new task with an ended task's function and payload; `task_id` names the new one.

        ConflictError: `transition_refused` while the task runs, `duplicate_task` for a taken id.
        """
        answer = self._run(calls.rerun(rerun_of, task_id))
        return TaskHandle(answer["task_id"], answer["status"], self)

    def suspend_function(self, name: str) -> dict[str, Any]:
        """Pause a function's queue: its tasks are accepted but not started; answers it."""
        return self._run(calls.function_action(name, "suspend"))

    def resume_function(self, name: str) -> dict[str, Any]:
        """Let a paused function's queue run again; answers the function."""
        return self._run(calls.function_action(name, "resume"))

    # schedules

    def put_schedule(self, name: str, **config: Any) -> dict[str, Any]:
        """Create or update a schedule: `function=`, `cron=` or `every_s=`, and optionally
        `payload=`, `timezone=`, `enabled=`, `catch_up=`; answers it with `next_fire_at`."""
        return self._run(calls.put_schedule(name, config))

    def get_schedule(self, name: str) -> dict[str, Any]:
        return self._run(calls.get(calls.schedule_path(name)))

    def list_schedules(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self._run(calls.get("/v1/schedules"))["items"]
        return items

    def delete_schedule(self, name: str) -> None:
        self._run(calls.delete_schedule(name))

    # tenants and keys (the admin key)

    def create_tenant(self, name: str) -> dict[str, Any]:
        return self._run(calls.create_tenant(name))

    def list_tenants(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self._run(calls.get("/v1/tenants"))["items"]
        return items

    def create_key(self, tenant: str, name: str | None = None) -> dict[str, Any]:
        """A new API key of `tenant`; its `key` is in this answer only."""
        return self._run(calls.create_key(tenant, name))

    def list_keys(self, tenant: str | None = None) -> list[dict[str, Any]]:
        params = {"tenant": tenant} if tenant is not None else None
        items: list[dict[str, Any]] = self._run(calls.get("/v1/keys", params))["items"]
        return items

    def revoke_key(self, key_id: str) -> None:
        self._run(calls.revoke_key(key_id))

    # triggers

    def put_trigger(self, name: str, **config: Any) -> dict[str, Any]:
        """Create or update a trigger: `function=`, `type=` ("nats", "redis-stream", "amqp",
        "directory") and the source's settings (`stream=`, `queue=`, `path=`, ...)."""
        return self._run(calls.put_trigger(name, config))

    def get_trigger(self, name: str) -> dict[str, Any]:
        """The trigger with its live `status` (phase, lag, rate, last error)."""
        return self._run(calls.get(calls.trigger_path(name)))

    def list_triggers(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self._run(calls.get("/v1/triggers"))["items"]
        return items

    def delete_trigger(self, name: str) -> None:
        self._run(calls.delete_trigger(name))

    def health(self) -> dict[str, Any]:
        return self._run(calls.get("/healthz"))


class AsyncClient:
    """The asyncio client: `Client`'s methods, awaited; iterators are async iterators."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        api_key: str | None = None,
        timeout: float | httpx.Timeout | None = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers=calls.default_headers(api_key),
            timeout=timeout,
            transport=transport,
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # drivers: the only code that differs from Client

    async def _run(self, call: calls.Call[T]) -> T:
        return call.parse(await self._http.send(call.request(self._http)))

    async def _step(self, step: calls.Step) -> Any:
        if isinstance(step, calls.Call):
            return await self._run(step)
        await asyncio.sleep(step)
        return None

    async def _drive(self, flow: calls.Flow[T]) -> T:
        answer: Any = None
        while True:
            try:
                step = flow.send(answer)
            except StopIteration as stop:
                value: T = stop.value
                return value
            answer = await self._step(step)

    async def _iterate(self, flow: calls.Stream) -> AsyncIterator[Any]:
        answer: Any = None
        while True:
            try:
                step = flow.send(answer)
            except StopIteration:
                return
            if isinstance(step, calls.Emit):
                answer = None
                yield step.item
            else:
                answer = await self._step(step)

    # functions

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
        body = calls.function_config(handler, command, runtime, config)
        return await self._drive(calls.deploy_flow(name, body, code))

    async def get_function(self, name: str) -> dict[str, Any]:
        return await self._run(calls.get(calls.function_path(name)))

    async def list_functions(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = (await self._run(calls.get("/v1/functions")))["items"]
        return items

    async def delete_function(self, name: str) -> None:
        await self._run(calls.delete_function(name))

    async def upload_code(self, name: str, data: bytes | Path) -> str:
        return await self._run(calls.put_code(name, calls.code_bytes(data)))

    # invocations

    async def invoke_async(
        self,
        name: str,
        payload: Any = b"",
        *,
        task_id: str | None = None,
        delay_s: float | None = None,
        run_at: When | None = None,
        priority: int | None = None,
    ) -> AsyncTaskHandle:
        call = calls.invoke_async(name, payload, task_id, delay_s, run_at, priority)
        answer = await self._run(call)
        return AsyncTaskHandle(answer["task_id"], answer["status"], self)

    async def invoke_batch(
        self, name: str, items: Iterable[BatchItem | Any]
    ) -> list[AsyncTaskHandle]:
        answer = await self._run(calls.invoke_batch(name, items))
        return [
            AsyncTaskHandle(i["task_id"], i["status"], self, i["created"]) for i in answer["items"]
        ]

    async def invoke(self, name: str, payload: Any = b"", *, timeout: float | None = None) -> Any:
        return await self._run(calls.invoke_sync(name, payload, timeout))

    # tasks

    async def get_task(self, task_id: str) -> dict[str, Any]:
        return await self._run(calls.get(calls.task_path(task_id)))

    async def list_tasks(
        self,
        function: str | None = None,
        status: str | None = None,
        since: When | None = None,
        until: When | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        params = calls.task_params(function, status, since, until, limit, cursor)
        return await self._run(calls.get("/v1/tasks", params))

    def iter_tasks(
        self,
        function: str | None = None,
        status: str | None = None,
        since: When | None = None,
        until: When | None = None,
        page_size: int = 100,
    ) -> AsyncIterator[dict[str, Any]]:
        params = calls.task_params(function, status, since, until, page_size, None)
        return self._iterate(calls.pages_flow(params))

    async def logs(self, task_id: str, after: int = 0) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = (await self._run(calls.logs(task_id, after)))["items"]
        return items

    def follow_logs(
        self, task_id: str, poll_s: float = 0.2, after: int = 0
    ) -> AsyncIterator[dict[str, Any]]:
        return self._iterate(calls.follow_flow(task_id, after, poll_s))

    async def wait(
        self, task_id: str, timeout: float | None = None, poll_s: float = MAX_POLL_S
    ) -> dict[str, Any]:
        return await self._drive(calls.wait_flow(task_id, timeout, poll_s))

    # control

    async def stop(self, task_id: str, *, timeout: float | None = None) -> dict[str, Any]:
        return await self._run(calls.stop(task_id, timeout))

    async def suspend(self, task_id: str) -> dict[str, Any]:
        return await self._run(calls.task_action(task_id, "suspend"))

    async def resume(self, task_id: str) -> dict[str, Any]:
        return await self._run(calls.task_action(task_id, "resume"))

    async def rerun(self, rerun_of: str, /, *, task_id: str | None = None) -> AsyncTaskHandle:
        answer = await self._run(calls.rerun(rerun_of, task_id))
        return AsyncTaskHandle(answer["task_id"], answer["status"], self)

    async def suspend_function(self, name: str) -> dict[str, Any]:
        return await self._run(calls.function_action(name, "suspend"))

    async def resume_function(self, name: str) -> dict[str, Any]:
        return await self._run(calls.function_action(name, "resume"))

    # schedules

    async def put_schedule(self, name: str, **config: Any) -> dict[str, Any]:
        return await self._run(calls.put_schedule(name, config))

    async def get_schedule(self, name: str) -> dict[str, Any]:
        return await self._run(calls.get(calls.schedule_path(name)))

    async def list_schedules(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = (await self._run(calls.get("/v1/schedules")))["items"]
        return items

    async def delete_schedule(self, name: str) -> None:
        await self._run(calls.delete_schedule(name))

    # tenants and keys (the admin key)

    async def create_tenant(self, name: str) -> dict[str, Any]:
        return await self._run(calls.create_tenant(name))

    async def list_tenants(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = (await self._run(calls.get("/v1/tenants")))["items"]
        return items

    async def create_key(self, tenant: str, name: str | None = None) -> dict[str, Any]:
        return await self._run(calls.create_key(tenant, name))

    async def list_keys(self, tenant: str | None = None) -> list[dict[str, Any]]:
        params = {"tenant": tenant} if tenant is not None else None
        items: list[dict[str, Any]] = (await self._run(calls.get("/v1/keys", params)))["items"]
        return items

    async def revoke_key(self, key_id: str) -> None:
        await self._run(calls.revoke_key(key_id))

    # triggers

    async def put_trigger(self, name: str, **config: Any) -> dict[str, Any]:
        return await self._run(calls.put_trigger(name, config))

    async def get_trigger(self, name: str) -> dict[str, Any]:
        return await self._run(calls.get(calls.trigger_path(name)))

    async def list_triggers(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = (await self._run(calls.get("/v1/triggers")))["items"]
        return items

    async def delete_trigger(self, name: str) -> None:
        await self._run(calls.delete_trigger(name))

    async def health(self) -> dict[str, Any]:
        return await self._run(calls.get("/healthz"))
