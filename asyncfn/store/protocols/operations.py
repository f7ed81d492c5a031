"""The store's bulk operations (domain/operations.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from asyncfn.domain.operations import MatchedTask, Operation, OperationKind, TaskFilter
from asyncfn.store.records import Control


class OperationStore(Protocol):
    """Bulk operations: counted, created, claimed with a lease, walked batch by batch, ended."""

    async def count_operation_tasks(
        self, tenant: str, kind: OperationKind, filter: TaskFilter, now: float
    ) -> int:
        """How many tasks of `tenant` match `filter` that `kind` acts on now (a dry run)."""

    async def create_operation(
        self, op_id: str, tenant: str, kind: OperationKind, filter: TaskFilter, now: float
    ) -> Operation:
        """A running operation bounded by the newest task row now, its `total` counted up to
        that row (off the writer: a big count never holds up submissions)."""

    async def get_operation(self, tenant: str, op_id: str) -> Operation | None: ...

    async def list_operations(self, tenant: str, limit: int) -> list[Operation]:
        """`tenant`'s operations, newest first."""

    async def claim_operation(self, node: str, now: float, lease_until: float) -> Operation | None:
        """Take (or renew) the oldest running operation that `node` owns or whose owner's lease
        lapsed; None when there is none."""

    async def operation_batch(self, op: Operation, limit: int) -> list[MatchedTask]:
        """Up to `limit` tasks `op` matches and acts on now, past its cursor up to its
        `max_row`, by row."""

    async def save_operation(
        self,
        op_id: str,
        node: str,
        done: int,
        skipped: int,
        cursor: int | None,
        now: float,
        lease_until: float,
    ) -> bool:
        """Progress after a batch, renewing `node`'s lease; False when `node` no longer owns
        the running operation (another took it over, or it ended)."""

    async def end_operation(
        self,
        op_id: str,
        node: str,
        status: str,
        done: int,
        skipped: int,
        cursor: int | None,
        error: str | None,
        now: float,
    ) -> bool:
        """The operation's end (succeeded or failed); False when `node` does not own it."""

    async def stop_waiting(
        self, tenant: str, task_ids: Sequence[str], now: float, detail: dict[str, Any] | None
    ) -> list[Control]:
        """`stop` of many tasks in one transaction, for the waiting ones only (→ Stopped); a
        task holding a lease is answered unchanged (`live`), for the engine to stop one by one.
        Tasks not found are left out."""
