"""`TaskHandle` and `AsyncTaskHandle`: a submitted task and the client that submitted it.

Re-exported by `asyncfn.client`; each method is the client's own call for this task, which also
updates `status` from the answer.
"""
# AsyncTaskHandle keeps TaskHandle's `timeout=` parameters: they bound server-side waits.
# ruff: noqa: ASYNC109

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from asyncfn import client_calls as calls

if TYPE_CHECKING:
    from asyncfn.client_invocations import AsyncInvocationsApi, InvocationsApi


@dataclass(slots=True)
class TaskHandle:
    """A submitted task: its id, its status when last seen, and the client that submitted it."""

    task_id: str
    status: str
    client: InvocationsApi = field(repr=False)
    created: bool = True

    def _seen(self, answer: dict[str, Any]) -> dict[str, Any]:
        self.status = answer["status"]
        return answer

    def refresh(self) -> dict[str, Any]:
        """The task as it is now; updates `status`."""
        return self._seen(self.client.get_task(self.task_id))

    def wait(self, timeout: float | None = None) -> dict[str, Any]:
        """The task once terminal; TaskTimeout if `timeout` seconds pass first."""
        return self._seen(self.client.wait(self.task_id, timeout))

    def result(self, timeout: float | None = None) -> Any:
        """The handler's result once Succeeded; TaskFailed for any other terminal status."""
        return calls.result_of(self.wait(timeout))

    def stop(self, timeout: float | None = None) -> dict[str, Any]:
        """`Client.stop` for this task: `{"task_id", "status": "Stopped" | "Stopping"}`."""
        return self._seen(self.client.stop(self.task_id, timeout=timeout))

    def suspend(self) -> dict[str, Any]:
        """`Client.suspend` for this task."""
        return self._seen(self.client.suspend(self.task_id))

    def resume(self) -> dict[str, Any]:
        """`Client.resume` for this task."""
        return self._seen(self.client.resume(self.task_id))

    def rerun(self, *, task_id: str | None = None) -> TaskHandle:
        """`Client.rerun` of this (ended) task: the new task's handle."""
        return self.client.rerun(self.task_id, task_id=task_id)


@dataclass(slots=True)
class AsyncTaskHandle:
    """`TaskHandle` for an `AsyncClient`."""

    task_id: str
    status: str
    client: AsyncInvocationsApi = field(repr=False)
    created: bool = True

    def _seen(self, answer: dict[str, Any]) -> dict[str, Any]:
        self.status = answer["status"]
        return answer

    async def refresh(self) -> dict[str, Any]:
        return self._seen(await self.client.get_task(self.task_id))

    async def wait(self, timeout: float | None = None) -> dict[str, Any]:
        return self._seen(await self.client.wait(self.task_id, timeout))

    async def result(self, timeout: float | None = None) -> Any:
        return calls.result_of(await self.wait(timeout))

    async def stop(self, timeout: float | None = None) -> dict[str, Any]:
        return self._seen(await self.client.stop(self.task_id, timeout=timeout))

    async def suspend(self) -> dict[str, Any]:
        return self._seen(await self.client.suspend(self.task_id))

    async def resume(self) -> dict[str, Any]:
        return self._seen(await self.client.resume(self.task_id))

    async def rerun(self, *, task_id: str | None = None) -> AsyncTaskHandle:
        return await self.client.rerun(self.task_id, task_id=task_id)
