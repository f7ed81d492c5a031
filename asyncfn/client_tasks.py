"""The client's task calls: read, list and page, logs (followed), wait for the end, and
stop, suspend, resume."""

# AsyncClient keeps Client's `timeout=` parameters: they bound server-side waits and polling.
# ruff: noqa: ASYNC109

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal

from asyncfn import client_calls as calls
from asyncfn.client_calls import MAX_POLL_S, When
from asyncfn.client_drivers import AsyncDriver, SyncDriver
from asyncfn.client_errors import TaskTimeout
from asyncfn.domain.states import TERMINAL


def _task_params(
    function: str | None,
    status: str | None,
    since: calls.When | None,
    until: calls.When | None,
    limit: int,
    cursor: str | None,
) -> dict[str, str]:
    params = {"function": function, "status": status, "cursor": cursor, "limit": str(limit)}
    params["since"] = calls.rfc3339(since) if since is not None else None
    params["until"] = calls.rfc3339(until) if until is not None else None
    return {k: v for k, v in params.items() if v is not None}


def _logs(task_id: str, after: int) -> calls.Call[dict[str, Any]]:
    return calls.get(f"{calls.task_path(task_id)}/logs", {"after": str(after)})


def _task_action(
    task_id: str, action: Literal["suspend", "resume", "purge"]
) -> calls.Call[dict[str, Any]]:
    """`POST /v1/tasks/{id}:{action}`; answers `{"task_id", "status"}` (purge: what it erased)."""
    return calls.Call("POST", f"{calls.task_path(task_id)}:{action}", calls.json_of)


def _stop(task_id: str, timeout: float | None) -> calls.Call[dict[str, Any]]:
    """The server waits for the task to stop (its grace, a few seconds more) and bounds that
    wait itself, so `timeout` None lifts the client's read timeout."""
    return calls.Call("POST", f"{calls.task_path(task_id)}:stop", calls.json_of, read_s=timeout)


def _wait_flow(task_id: str, timeout: float | None, poll_s: float) -> calls.Flow[dict[str, Any]]:
    """Poll the task, 5 ms apart at first and doubling up to `poll_s`, until it is terminal."""
    deadline = None if timeout is None else time.monotonic() + timeout
    pause = min(calls.FIRST_POLL_S, poll_s)
    while True:
        task: dict[str, Any] = yield calls.get(calls.task_path(task_id))
        if task["status"] in TERMINAL:
            return task
        left = float("inf") if deadline is None else deadline - time.monotonic()
        if left <= 0:
            message = f"task {task_id} is still {task['status']} after {timeout:g} s"
            raise TaskTimeout(task_id, message, status=task["status"])
        yield min(pause, left)
        pause = min(pause * 2, poll_s)


def _follow_flow(task_id: str, after: int, poll_s: float) -> calls.Stream:
    """Hand out log lines until the task is terminal and no line is left after that."""
    while True:
        page = yield _logs(task_id, after)
        for line in page["items"]:
            after = max(after, int(line["seq"]))
            yield calls.Emit(line)
        if not page["items"]:
            if page.get("status") in TERMINAL:
                return
            yield poll_s


def _pages_flow(params: dict[str, str]) -> calls.Stream:
    """Hand out every task of a listing, following `next_cursor` page after page."""
    while True:
        page = yield calls.get("/v1/tasks", params)
        for task in page["items"]:
            yield calls.Emit(task)
        if not page.get("next_cursor"):
            return
        params = {**params, "cursor": page["next_cursor"]}


class TasksApi(SyncDriver):
    """`Client`'s tasks methods."""

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
        params = _task_params(function, status, since, until, limit, cursor)
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
        params = _task_params(function, status, since, until, page_size, None)
        return self._iterate(_pages_flow(params))

    def logs(self, task_id: str, after: int = 0) -> list[dict[str, Any]]:
        """Log lines `{"seq", "at", "stream", "line"}` with seq > `after`."""
        items: list[dict[str, Any]] = self._run(_logs(task_id, after))["items"]
        return items

    def follow_logs(
        self, task_id: str, poll_s: float = 0.2, after: int = 0
    ) -> Iterator[dict[str, Any]]:
        """Log lines as they come, until the task is terminal and every line is out."""
        return self._iterate(_follow_flow(task_id, after, poll_s))

    def wait(
        self, task_id: str, timeout: float | None = None, poll_s: float = MAX_POLL_S
    ) -> dict[str, Any]:
        """The task once terminal; polls 5 ms apart, doubling up to `poll_s`."""
        return self._drive(_wait_flow(task_id, timeout, poll_s))

    def stop(self, task_id: str, *, timeout: float | None = None) -> dict[str, Any]:
        """Stop a task; answers `{"task_id", "status"}`, "Stopped" or still "Stopping".

        The server waits for the task to stop, up to the function's stop grace and a few
        seconds; `timeout` bounds the client's own wait (httpx.ReadTimeout past it). A task
        already ended raises ConflictError (`transition_refused`, `.existing_status`).
        """
        return self._run(_stop(task_id, timeout))

    def suspend(self, task_id: str) -> dict[str, Any]:
        """Suspend a task until resumed; answers `{"task_id", "status": "Suspended"}`."""
        return self._run(_task_action(task_id, "suspend"))

    def resume(self, task_id: str) -> dict[str, Any]:
        """Resume a suspended task; answers `{"task_id", "status": "Running" | "Enqueued"}`."""
        return self._run(_task_action(task_id, "resume"))

    def purge_task(self, task_id: str) -> dict[str, Any]:
        """Erase an ended task's payload, result, checkpoint and logs (its events stay);
        answers `{"task_id", "purged_at", "purged": [...]}`, the same when purged already.
        A task not ended yet raises ConflictError (`transition_refused`)."""
        return self._run(_task_action(task_id, "purge"))


class AsyncTasksApi(AsyncDriver):
    """`AsyncClient`'s tasks methods."""

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
        params = _task_params(function, status, since, until, limit, cursor)
        return await self._run(calls.get("/v1/tasks", params))

    def iter_tasks(
        self,
        function: str | None = None,
        status: str | None = None,
        since: When | None = None,
        until: When | None = None,
        page_size: int = 100,
    ) -> AsyncIterator[dict[str, Any]]:
        params = _task_params(function, status, since, until, page_size, None)
        return self._iterate(_pages_flow(params))

    async def logs(self, task_id: str, after: int = 0) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = (await self._run(_logs(task_id, after)))["items"]
        return items

    def follow_logs(
        self, task_id: str, poll_s: float = 0.2, after: int = 0
    ) -> AsyncIterator[dict[str, Any]]:
        return self._iterate(_follow_flow(task_id, after, poll_s))

    async def wait(
        self, task_id: str, timeout: float | None = None, poll_s: float = MAX_POLL_S
    ) -> dict[str, Any]:
        return await self._drive(_wait_flow(task_id, timeout, poll_s))

    async def stop(self, task_id: str, *, timeout: float | None = None) -> dict[str, Any]:
        return await self._run(_stop(task_id, timeout))

    async def suspend(self, task_id: str) -> dict[str, Any]:
        return await self._run(_task_action(task_id, "suspend"))

    async def resume(self, task_id: str) -> dict[str, Any]:
        return await self._run(_task_action(task_id, "resume"))

    async def purge_task(self, task_id: str) -> dict[str, Any]:
        return await self._run(_task_action(task_id, "purge"))
