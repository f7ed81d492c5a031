"""The client's submissions: one task (async or sync), a batch, and a rerun; answered as
task handles."""

# AsyncClient keeps Client's `timeout=` parameters: they bound server-side waits and polling.
# ruff: noqa: ASYNC109

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from asyncfn import client_calls as calls
from asyncfn.client_calls import BatchItem, When
from asyncfn.client_handles import AsyncTaskHandle, TaskHandle
from asyncfn.client_tasks import AsyncTasksApi, TasksApi


def _batch_item(item: Any) -> dict[str, Any]:
    """The wire form of one item: always `{"payload": ...}`, so no payload is mistaken for one."""
    if not (isinstance(item, Mapping) and "payload" in item):
        return {"payload": calls.json_payload(item)}
    unknown = set(item) - set(BatchItem.__annotations__)
    if unknown:
        raise ValueError(f"unknown batch item keys: {sorted(unknown)}")
    wire = {k: v for k, v in item.items() if v is not None}
    wire["payload"] = calls.json_payload(item["payload"])
    if "run_at" in wire:
        wire["run_at"] = calls.rfc3339(wire["run_at"])
    return wire


def _invoke_async(
    name: str,
    payload: Any,
    task_id: str | None,
    delay_s: float | None,
    run_at: calls.When | None,
    priority: int | None,
) -> calls.Call[dict[str, Any]]:
    content, content_type = calls.encode_payload(payload)
    headers = {"X-Invocation-Type": "Async", "Content-Type": content_type}
    if task_id is not None:
        headers["X-Task-Id"] = task_id
    if delay_s is not None:
        headers["X-Delay-Seconds"] = calls.number(delay_s)
    if run_at is not None:
        headers["X-Run-At"] = calls.rfc3339(run_at)
    if priority is not None:
        headers["X-Priority"] = str(int(priority))
    path = f"{calls.function_path(name)}/invocations"
    return calls.Call("POST", path, calls.json_of, headers=headers, content=content)


def _invoke_batch(name: str, items: Iterable[Any]) -> calls.Call[dict[str, Any]]:
    wire = [_batch_item(item) for item in items]
    return calls.Call(
        "POST", f"{calls.function_path(name)}/invocations:batch", calls.json_of, json=wire
    )


def _invoke_sync(name: str, payload: Any, timeout: float | None) -> calls.Call[Any]:
    """`timeout` None waits as long as the server does (it answers 504 at its own limit)."""
    content, content_type = calls.encode_payload(payload)
    headers = {"X-Invocation-Type": "Sync", "Content-Type": content_type}
    path = f"{calls.function_path(name)}/invocations"
    return calls.Call(
        "POST", path, calls.sync_result_of, headers=headers, content=content, read_s=timeout
    )


def _rerun(task_id: str, new_task_id: str | None) -> calls.Call[dict[str, Any]]:
    """`{"task_id": <new>, "status": "Enqueued", "rerun_of": task_id}`."""
    headers = {"X-Task-Id": new_task_id} if new_task_id is not None else None
    return calls.Call("POST", f"{calls.task_path(task_id)}:rerun", calls.json_of, headers=headers)


class InvocationsApi(TasksApi):
    """`Client`'s submissions; the handles they answer use the task calls it inherits."""

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
        call = _invoke_async(name, payload, task_id, delay_s, run_at, priority)
        answer = self._run(call)
        return TaskHandle(answer["task_id"], answer["status"], self)

    def invoke_batch(self, name: str, items: Iterable[BatchItem | Any]) -> list[TaskHandle]:
        """Submit up to 1,000 tasks in one transaction; handles in the order of `items`."""
        answer = self._run(_invoke_batch(name, items))
        return [TaskHandle(i["task_id"], i["status"], self, i["created"]) for i in answer["items"]]

    def invoke(self, name: str, payload: Any = b"", *, timeout: float | None = None) -> Any:
        """Run one task and answer its result; TaskFailed if it failed, TaskTimeout on 504.

        The server bounds the wait (504 past it); `timeout` also bounds the client's own wait
        for the answer (httpx.ReadTimeout past it). Either way the task keeps running.
        """
        return self._run(_invoke_sync(name, payload, timeout))

    def rerun(self, rerun_of: str, /, *, task_id: str | None = None) -> TaskHandle:
        """A new task with an ended task's function and payload; `task_id` names the new one.

        ConflictError: `transition_refused` while the task runs, `duplicate_task` for a taken id.
        """
        answer = self._run(_rerun(rerun_of, task_id))
        return TaskHandle(answer["task_id"], answer["status"], self)


class AsyncInvocationsApi(AsyncTasksApi):
    """`AsyncClient`'s submissions; the handles they answer use the task calls it inherits."""

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
        call = _invoke_async(name, payload, task_id, delay_s, run_at, priority)
        answer = await self._run(call)
        return AsyncTaskHandle(answer["task_id"], answer["status"], self)

    async def invoke_batch(
        self, name: str, items: Iterable[BatchItem | Any]
    ) -> list[AsyncTaskHandle]:
        answer = await self._run(_invoke_batch(name, items))
        return [
            AsyncTaskHandle(i["task_id"], i["status"], self, i["created"]) for i in answer["items"]
        ]

    async def invoke(self, name: str, payload: Any = b"", *, timeout: float | None = None) -> Any:
        return await self._run(_invoke_sync(name, payload, timeout))

    async def rerun(self, rerun_of: str, /, *, task_id: str | None = None) -> AsyncTaskHandle:
        answer = await self._run(_rerun(rerun_of, task_id))
        return AsyncTaskHandle(answer["task_id"], answer["status"], self)
