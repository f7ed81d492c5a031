"""The client's dead-letter calls, as `client.dead_letters`: list (a page, newest first), iterate
every entry, and rerun one (once: a second rerun raises ConflictError `already_rerun`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from asyncfn import client_calls as calls
from asyncfn.client_drivers import AsyncDriver, SyncDriver

PATH = "/v1/dead-letters"


def _params(function: str | None, limit: int, cursor: str | None) -> dict[str, str]:
    params = {"function": function, "limit": str(limit), "cursor": cursor}
    return {k: v for k, v in params.items() if v is not None}


def _rerun(task_id: str, new_task_id: str | None) -> calls.Call[dict[str, Any]]:
    headers = {"X-Task-Id": new_task_id} if new_task_id is not None else None
    path = f"{PATH}/{calls.segment(task_id)}:rerun"
    return calls.Call("POST", path, calls.json_of, headers=headers)


def _pages_flow(params: dict[str, str]) -> calls.Stream:
    while True:
        page = yield calls.get(PATH, params)
        for entry in page["items"]:
            yield calls.Emit(entry)
        if not page.get("next_cursor"):
            return
        params = {**params, "cursor": page["next_cursor"]}


class DeadLetters:
    """`Client.dead_letters`. An entry is `{"task_id", "function", "status", "error",
    "attempts", "at", "rerun_as", "rerun_at"}`."""

    def __init__(self, driver: SyncDriver) -> None:
        self._driver = driver

    def list(
        self, function: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> dict[str, Any]:
        """One page, newest first: `{"items": [...], "next_cursor": ... | None}`."""
        return self._driver._run(calls.get(PATH, _params(function, limit, cursor)))

    def iter(self, function: str | None = None, page_size: int = 100) -> Iterator[dict[str, Any]]:
        """Every entry, newest first, fetching pages as it goes."""
        return self._driver._iterate(_pages_flow(_params(function, page_size, None)))

    def rerun(self, task_id: str, new_task_id: str | None = None) -> dict[str, Any]:
        """A new task with the dead letter's payload: `{"task_id", "status", "rerun_of"}`.
        ConflictError (`already_rerun`, naming the rerun) when the entry was rerun before."""
        return self._driver._run(_rerun(task_id, new_task_id))


class AsyncDeadLetters:
    """`AsyncClient.dead_letters`: `DeadLetters`' methods, awaited."""

    def __init__(self, driver: AsyncDriver) -> None:
        self._driver = driver

    async def list(
        self, function: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> dict[str, Any]:
        return await self._driver._run(calls.get(PATH, _params(function, limit, cursor)))

    def iter(
        self, function: str | None = None, page_size: int = 100
    ) -> AsyncIterator[dict[str, Any]]:
        return self._driver._iterate(_pages_flow(_params(function, page_size, None)))

    async def rerun(self, task_id: str, new_task_id: str | None = None) -> dict[str, Any]:
        return await self._driver._run(_rerun(task_id, new_task_id))


class DeadLettersApi(SyncDriver):
    """`Client`'s `dead_letters`."""

    @property
    def dead_letters(self) -> DeadLetters:
        return DeadLetters(self)


class AsyncDeadLettersApi(AsyncDriver):
    """`AsyncClient`'s `dead_letters`."""

    @property
    def dead_letters(self) -> AsyncDeadLetters:
        return AsyncDeadLetters(self)
