"""The PostgreSQL store's bulk operations: SQLite's filter clause (store/sqlite/operations.py)
with this driver's placeholders, and the operation rows under the same statement names. A
claim skips an operation another node's claim holds locked, so one node runs each."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from asyncfn.domain.operations import MatchedTask, Operation, OperationKind, TaskFilter
from asyncfn.store.base import Control
from asyncfn.store.postgres.control import PgControl
from asyncfn.store.postgres.plumbing import PgPlumbing
from asyncfn.store.postgres.rows import Conn, execute, fetch_all, fetch_one, json_text
from asyncfn.store.sqlite.operations import (
    batch_params,
    batch_sql,
    count_sql,
    match_clause,
    matched_from_row,
    operation_from_row,
    progress_params,
)


def pg_placeholder(name: str) -> str:
    return f"%({name})s"


def pg_label(key: str, value: str) -> str:
    return f"(t.attributes::jsonb ->> {key}) = {value}"


def _clause(
    tenant: str, kind: OperationKind, f: TaskFilter, ended_by: float
) -> tuple[str, dict[str, Any]]:
    return match_clause(tenant, kind, f, ended_by, pg_placeholder, pg_label)


class PgOperations:
    """Operation ops over the named statements `q`."""

    def __init__(self, q: Mapping[str, str]) -> None:
        self.q = q

    async def count(
        self, conn: Conn, tenant: str, kind: OperationKind, f: TaskFilter, now: float
    ) -> int:
        where, params = _clause(tenant, kind, f, now)
        found = await fetch_one(conn, count_sql(where), params)
        return int(found[0]) if found is not None else 0

    async def bound(
        self, conn: Conn, tenant: str, kind: OperationKind, f: TaskFilter, now: float
    ) -> tuple[int, int]:
        """The newest task row and how many tasks up to it match (the caller's snapshot)."""
        where, params = _clause(tenant, kind, f, now)
        top = await fetch_one(conn, self.q["max_task_row"])
        max_row = int(top[0]) if top is not None else 0
        sql = f"{count_sql(where)} AND t.row <= %(max_row)s"
        found = await fetch_one(conn, sql, {**params, "max_row": max_row})
        return max_row, int(found[0]) if found is not None else 0

    async def batch(self, conn: Conn, op: Operation, limit: int) -> list[MatchedTask]:
        where, params = _clause(op.tenant, op.kind, op.filter, op.created_at)
        sql = batch_sql(where, pg_placeholder)
        rows = await fetch_all(conn, sql, batch_params(op, params, limit))
        return [matched_from_row(row) for row in rows]

    async def get(self, conn: Conn, tenant: str, op_id: str) -> Operation | None:
        row = await fetch_one(conn, self.q["get_operation"], {"tenant": tenant, "id": op_id})
        return None if row is None else operation_from_row(row)

    async def listed(self, conn: Conn, tenant: str, limit: int) -> list[Operation]:
        rows = await fetch_all(conn, self.q["list_operations"], {"tenant": tenant, "limit": limit})
        return [operation_from_row(row) for row in rows]

    async def create(
        self,
        conn: Conn,
        op_id: str,
        tenant: str,
        kind: OperationKind,
        f: TaskFilter,
        total: int,
        max_row: int,
        now: float,
    ) -> Operation:
        params = {
            "id": op_id,
            "tenant": tenant,
            "kind": kind,
            "filter": json_text(f.to_json()),
            "total": total,
            "max_row": max_row,
            "now": now,
        }
        row = await fetch_one(conn, self.q["insert_operation"], params)
        assert row is not None  # INSERT ... RETURNING answers its row
        return operation_from_row(row)

    async def claim(
        self, conn: Conn, node: str, now: float, lease_until: float
    ) -> Operation | None:
        params = {"node": node, "now": now, "lease_until": lease_until}
        row = await fetch_one(conn, self.q["claim_operation"], params)
        return None if row is None else operation_from_row(row)

    async def save(self, conn: Conn, params: dict[str, Any]) -> bool:
        return await execute(conn, self.q["save_operation_progress"], params) == 1

    async def end(self, conn: Conn, params: dict[str, Any]) -> bool:
        return await execute(conn, self.q["end_operation"], params) == 1


class PgOperationStore(PgPlumbing):
    """`PostgresStore`'s bulk-operation methods (the Store protocol's), kept here so the
    store's module does not grow."""

    _operations: PgOperations
    _control: PgControl

    async def count_operation_tasks(
        self, tenant: str, kind: OperationKind, filter: TaskFilter, now: float
    ) -> int:
        return await self._run(lambda c: self._operations.count(c, tenant, kind, filter, now))

    async def create_operation(
        self, op_id: str, tenant: str, kind: OperationKind, filter: TaskFilter, now: float
    ) -> Operation:
        max_row, total = await self._snapshot(
            lambda c: self._operations.bound(c, tenant, kind, filter, now)
        )
        create = self._operations.create
        return await self._run(
            lambda c: create(c, op_id, tenant, kind, filter, total, max_row, now)
        )

    async def get_operation(self, tenant: str, op_id: str) -> Operation | None:
        return await self._run(lambda c: self._operations.get(c, tenant, op_id))

    async def list_operations(self, tenant: str, limit: int) -> list[Operation]:
        return await self._run(lambda c: self._operations.listed(c, tenant, limit))

    async def claim_operation(self, node: str, now: float, lease_until: float) -> Operation | None:
        return await self._run(lambda c: self._operations.claim(c, node, now, lease_until))

    async def operation_batch(self, op: Operation, limit: int) -> list[MatchedTask]:
        return await self._run(lambda c: self._operations.batch(c, op, limit))

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
        params = progress_params(op_id, node, done, skipped, cursor, now)
        params["lease_until"] = lease_until
        return await self._run(lambda c: self._operations.save(c, params))

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
        params = progress_params(op_id, node, done, skipped, cursor, now)
        params.update(status=status, error=error)
        return await self._run(lambda c: self._operations.end(c, params))

    async def stop_waiting(
        self, tenant: str, task_ids: Sequence[str], now: float, detail: dict[str, Any] | None
    ) -> list[Control]:
        if not task_ids:
            return []
        # The runner gives ids in row order: two batches lock rows in the same order.
        return await self._run(
            lambda c: self._control.stop_waiting(c, tenant, task_ids, now, detail), True
        )
