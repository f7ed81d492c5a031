"""The client's bulk operations: `bulk_stop`, `bulk_rerun`, `bulk_purge` of every task a filter
matches (a dry run answers the count), and `client.operations` to read, list and wait for
their progress."""

# AsyncClient keeps Client's `timeout=` parameters: they bound the client's polling.
# ruff: noqa: ASYNC109

from __future__ import annotations

import time
from typing import Any, Literal

from asyncfn import client_calls as calls
from asyncfn.client_calls import MAX_POLL_S
from asyncfn.client_drivers import AsyncDriver, SyncDriver
from asyncfn.client_errors import ApiError

Kind = Literal["stop", "rerun", "purge"]
ENDED = ("succeeded", "failed")


class OperationTimeout(ApiError):
    """`wait_operation` ended first; the operation goes on."""


def task_filter(
    function: str | None = None,
    status: list[str] | None = None,
    created_after: calls.When | None = None,
    created_before: calls.When | None = None,
    key: str | None = None,
    labels: dict[str, str] | None = None,
    everything: bool = False,
) -> dict[str, Any]:
    """A filter for the bulk calls from keyword arguments (times as datetimes or seconds)."""
    given: dict[str, Any] = {
        "function": function,
        "status": status,
        "created_after": calls.rfc3339(created_after) if created_after is not None else None,
        "created_before": calls.rfc3339(created_before) if created_before is not None else None,
        "key": key,
        "labels": labels,
        "all": everything or None,
    }
    return {name: value for name, value in given.items() if value is not None}


def _bulk(kind: Kind, filter: dict[str, Any], dry_run: bool) -> calls.Call[dict[str, Any]]:
    body = {"filter": filter, "dry_run": dry_run}
    return calls.Call("POST", f"/v1/tasks:{kind}", calls.json_of, json=body)


def _answer(body: dict[str, Any]) -> dict[str, Any] | int:
    """A dry run's count, or the operation."""
    if body.get("dry_run"):
        return int(body["count"])
    operation: dict[str, Any] = body["operation"]
    return operation


def _operation(op_id: str) -> calls.Call[dict[str, Any]]:
    return calls.get(f"/v1/operations/{calls.segment(op_id)}")


def _wait_flow(op_id: str, timeout: float | None, poll_s: float) -> calls.Flow[dict[str, Any]]:
    """Read the operation, pausing `poll_s` between reads, until it has ended."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        op: dict[str, Any] = yield _operation(op_id)
        if op["status"] in ENDED:
            return op
        left = float("inf") if deadline is None else deadline - time.monotonic()
        if left <= 0:
            message = f"operation {op_id} still running after {timeout:g} s ({op['done']} done)"
            raise OperationTimeout(None, "operation_timeout", message)
        yield min(poll_s, left)


class Operations:
    """`Client.operations`. An operation is `{"id", "kind", "status", "filter", "total",
    "done", "skipped", "created_at", "updated_at", "finished_at", "error"}`."""

    def __init__(self, driver: SyncDriver) -> None:
        self._driver = driver

    def get(self, op_id: str) -> dict[str, Any]:
        return self._driver._run(_operation(op_id))

    def list(self, limit: int = 50) -> list[dict[str, Any]]:
        """The operations, newest first."""
        page = self._driver._run(calls.get("/v1/operations", {"limit": str(limit)}))
        items: list[dict[str, Any]] = page["items"]
        return items

    def wait(
        self, op_id: str, timeout: float | None = None, poll_s: float = MAX_POLL_S
    ) -> dict[str, Any]:
        """The operation once succeeded or failed; OperationTimeout when `timeout` passes."""
        return self._driver._drive(_wait_flow(op_id, timeout, poll_s))


class AsyncOperations:
    """`AsyncClient.operations`: `Operations`' methods, awaited."""

    def __init__(self, driver: AsyncDriver) -> None:
        self._driver = driver

    async def get(self, op_id: str) -> dict[str, Any]:
        return await self._driver._run(_operation(op_id))

    async def list(self, limit: int = 50) -> list[dict[str, Any]]:
        page = await self._driver._run(calls.get("/v1/operations", {"limit": str(limit)}))
        items: list[dict[str, Any]] = page["items"]
        return items

    async def wait(
        self, op_id: str, timeout: float | None = None, poll_s: float = MAX_POLL_S
    ) -> dict[str, Any]:
        return await self._driver._drive(_wait_flow(op_id, timeout, poll_s))


class OperationsApi(SyncDriver):
    """`Client`'s bulk calls and its `operations`. `filter` is the API's task filter (see
    `task_filter`); an empty one is refused (`{"all": true}` means every task)."""

    @property
    def operations(self) -> Operations:
        return Operations(self)

    def bulk_stop(self, filter: dict[str, Any], dry_run: bool = False) -> dict[str, Any] | int:
        """Stop every matching task not ended; answers the operation, or with `dry_run` the
        count of tasks it would stop now."""
        return _answer(self._run(_bulk("stop", filter, dry_run)))

    def bulk_rerun(self, filter: dict[str, Any], dry_run: bool = False) -> dict[str, Any] | int:
        """Rerun every matching ended task; the operation, or with `dry_run` the count."""
        return _answer(self._run(_bulk("rerun", filter, dry_run)))

    def bulk_purge(self, filter: dict[str, Any], dry_run: bool = False) -> dict[str, Any] | int:
        """Purge every matching ended task; the operation, or with `dry_run` the count."""
        return _answer(self._run(_bulk("purge", filter, dry_run)))


class AsyncOperationsApi(AsyncDriver):
    """`AsyncClient`'s bulk calls and its `operations`."""

    @property
    def operations(self) -> AsyncOperations:
        return AsyncOperations(self)

    async def bulk_stop(
        self, filter: dict[str, Any], dry_run: bool = False
    ) -> dict[str, Any] | int:
        return _answer(await self._run(_bulk("stop", filter, dry_run)))

    async def bulk_rerun(
        self, filter: dict[str, Any], dry_run: bool = False
    ) -> dict[str, Any] | int:
        return _answer(await self._run(_bulk("rerun", filter, dry_run)))

    async def bulk_purge(
        self, filter: dict[str, Any], dry_run: bool = False
    ) -> dict[str, Any] | int:
        return _answer(await self._run(_bulk("purge", filter, dry_run)))
