"""The SQLite store's bulk operations: the task filter as SQL, counting and walking the tasks it
matches, and the operation rows (created, claimed with a lease, progress saved, ended).

A filter's fields are all optional, so its WHERE clause is put together here from fixed
fragments, one per field given (every value bound, nothing from the caller in the SQL text);
that keeps the (tenant, function, row) index usable, which `:x IS NULL OR ...` would not. The
PostgreSQL store builds the same clause with its own placeholders (`match_clause`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

from asyncfn.domain.operations import (
    MatchedTask,
    Operation,
    OperationKind,
    TaskFilter,
    acted_on,
)
from asyncfn.domain.states import TaskStatus
from asyncfn.store.base import Control
from asyncfn.store.sqlite.control import SqliteControl
from asyncfn.store.sqlite.plumbing import SqlitePlumbing
from asyncfn.store.sqlite.rows import json_text, json_value

Connection = sqlite3.Connection
Placeholder = Callable[[str], str]

OPERATION_COLUMNS = (
    "id, tenant, kind, filter, status, total, done, skipped, cursor, max_row, error, "
    "created_at, updated_at, finished_at, owner, lease_until"
)
"""The columns `operation_from_row` reads, in order (the queries' SELECT lists)."""


def sqlite_placeholder(name: str) -> str:
    return f":{name}"


def sqlite_label(key: str, value: str) -> str:
    pair = f"j.key = {key} AND j.value = {value}"
    return f"EXISTS (SELECT 1 FROM json_each(t.attributes) j WHERE {pair})"


def match_clause(
    tenant: str,
    kind: OperationKind,
    f: TaskFilter,
    ended_by: float,
    p: Placeholder = sqlite_placeholder,
    label: Callable[[str, str], str] = sqlite_label,
) -> tuple[str, dict[str, Any]]:
    """The WHERE clause (over `tasks t`) and its parameters for the tasks of `tenant` that `f`
    matches and `kind` acts on now; rerun and purge take tasks ended by `ended_by` only, purge
    those not purged yet. A filter naming only statuses `kind` cannot act on matches nothing."""
    statuses = acted_on(kind, f.statuses)
    params: dict[str, Any] = {"tenant": tenant}
    parts = [f"t.tenant = {p('tenant')}"]
    if not statuses:
        return "1 = 0", params
    names = []
    for i, status in enumerate(statuses):
        params[f"status{i}"] = status.value
        names.append(p(f"status{i}"))
    parts.append(f"t.status IN ({', '.join(names)})")
    if f.function is not None:
        params["function"] = f.function
        parts.append(f"t.function = {p('function')}")
    if f.created_after is not None:
        params["created_after"] = f.created_after
        parts.append(f"t.created_at > {p('created_after')}")
    if f.created_before is not None:
        params["created_before"] = f.created_before
        parts.append(f"t.created_at < {p('created_before')}")
    if f.key is not None:
        params["key"] = f.key
        columns = "t.ckey1, t.ckey2, t.ckey3, t.debounce_key, t.throttle_key"
        parts.append(f"{p('key')} IN ({columns})")
    for i, (name, value) in enumerate(f.labels):
        params[f"label_key{i}"] = name
        params[f"label_value{i}"] = value
        parts.append(label(p(f"label_key{i}"), p(f"label_value{i}")))
    if kind != "stop":
        params["ended_by"] = ended_by
        parts.append(f"t.finished_at <= {p('ended_by')}")
    if kind == "purge":
        parts.append("t.purged_at IS NULL")
    return " AND ".join(parts), params


def count_sql(where: str) -> str:
    return f"SELECT count(*) FROM tasks t WHERE {where}"


def batch_sql(where: str, p: Placeholder = sqlite_placeholder) -> str:
    return (
        f"SELECT t.row, t.id, t.function, t.status FROM tasks t WHERE {where}"
        f" AND t.row > {p('after')} AND t.row <= {p('max_row')} ORDER BY t.row LIMIT {p('limit')}"
    )


def batch_params(op: Operation, params: dict[str, Any], limit: int) -> dict[str, Any]:
    return {**params, "after": op.cursor or 0, "max_row": op.max_row, "limit": limit}


def operation_from_row(row: tuple[Any, ...]) -> Operation:
    (id_, tenant, kind, filter_, status, total, done, skipped, cursor, max_row, error) = row[:11]
    created_at, updated_at, finished_at, owner, lease_until = row[11:]
    return Operation(
        id=id_,
        tenant=tenant,
        kind=kind,
        filter=TaskFilter.from_json(json_value(filter_) or {}),
        status=status,
        total=int(total),
        done=int(done),
        skipped=int(skipped),
        cursor=None if cursor is None else int(cursor),
        max_row=int(max_row),
        error=error,
        created_at=float(created_at),
        updated_at=float(updated_at),
        finished_at=None if finished_at is None else float(finished_at),
        owner=owner,
        lease_until=None if lease_until is None else float(lease_until),
    )


def matched_from_row(row: tuple[Any, ...]) -> MatchedTask:
    return MatchedTask(int(row[0]), row[1], row[2], TaskStatus(row[3]))


class SqliteOperations:
    """Operation ops over the named statements `q`: reads take a reader connection, writes the
    writer's."""

    def __init__(self, q: Mapping[str, str]) -> None:
        self.q = q

    # -- reads -------------------------------------------------------------------------------
    def count(
        self, conn: Connection, tenant: str, kind: OperationKind, f: TaskFilter, now: float
    ) -> int:
        where, params = match_clause(tenant, kind, f, now)
        (n,) = conn.execute(count_sql(where), params).fetchone()
        return int(n)

    def bound(
        self, conn: Connection, tenant: str, kind: OperationKind, f: TaskFilter, now: float
    ) -> tuple[int, int]:
        """The newest task row and how many tasks up to it match, in one read snapshot."""
        where, params = match_clause(tenant, kind, f, now)
        conn.execute("BEGIN")
        try:
            (max_row,) = conn.execute(self.q["max_task_row"]).fetchone()
            (n,) = conn.execute(
                f"{count_sql(where)} AND t.row <= :max_row", {**params, "max_row": max_row}
            ).fetchone()
        finally:
            conn.execute("COMMIT")
        return int(max_row), int(n)

    def batch(self, conn: Connection, op: Operation, limit: int) -> list[MatchedTask]:
        where, params = match_clause(op.tenant, op.kind, op.filter, op.created_at)
        found = conn.execute(batch_sql(where), batch_params(op, params, limit)).fetchall()
        return [matched_from_row(row) for row in found]

    def get(self, conn: Connection, tenant: str, op_id: str) -> Operation | None:
        row = conn.execute(self.q["get_operation"], {"tenant": tenant, "id": op_id}).fetchone()
        return None if row is None else operation_from_row(row)

    def listed(self, conn: Connection, tenant: str, limit: int) -> list[Operation]:
        rows = conn.execute(self.q["list_operations"], {"tenant": tenant, "limit": limit})
        return [operation_from_row(row) for row in rows.fetchall()]

    # -- writes ------------------------------------------------------------------------------
    def create(
        self,
        conn: Connection,
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
        row = conn.execute(self.q["insert_operation"], params).fetchone()
        return operation_from_row(row)

    def claim(
        self, conn: Connection, node: str, now: float, lease_until: float
    ) -> Operation | None:
        params = {"node": node, "now": now, "lease_until": lease_until}
        row = conn.execute(self.q["claim_operation"], params).fetchone()
        return None if row is None else operation_from_row(row)

    def save(self, conn: Connection, params: dict[str, Any]) -> bool:
        return bool(conn.execute(self.q["save_operation_progress"], params).rowcount == 1)

    def end(self, conn: Connection, params: dict[str, Any]) -> bool:
        return bool(conn.execute(self.q["end_operation"], params).rowcount == 1)


class SqliteOperationStore(SqlitePlumbing):
    """`SqliteStore`'s bulk-operation methods (the Store protocol's), kept here so the store's
    module does not grow; they run on its writer and readers like the rest."""

    _operations: SqliteOperations
    _control: SqliteControl

    async def count_operation_tasks(
        self, tenant: str, kind: OperationKind, filter: TaskFilter, now: float
    ) -> int:
        return await self._read(lambda c: self._operations.count(c, tenant, kind, filter, now))

    async def create_operation(
        self, op_id: str, tenant: str, kind: OperationKind, filter: TaskFilter, now: float
    ) -> Operation:
        bound = partial(self._operations.bound, tenant=tenant, kind=kind, f=filter, now=now)
        max_row, total = await self._read(bound)
        create = self._operations.create
        return await self._write(
            lambda c: create(c, op_id, tenant, kind, filter, total, max_row, now)
        )

    async def get_operation(self, tenant: str, op_id: str) -> Operation | None:
        return await self._read(lambda c: self._operations.get(c, tenant, op_id))

    async def list_operations(self, tenant: str, limit: int) -> list[Operation]:
        return await self._read(lambda c: self._operations.listed(c, tenant, limit))

    async def claim_operation(self, node: str, now: float, lease_until: float) -> Operation | None:
        return await self._write(lambda c: self._operations.claim(c, node, now, lease_until))

    async def operation_batch(self, op: Operation, limit: int) -> list[MatchedTask]:
        return await self._read(lambda c: self._operations.batch(c, op, limit))

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
        return await self._write(lambda c: self._operations.save(c, params))

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
        return await self._write(lambda c: self._operations.end(c, params))

    async def stop_waiting(
        self, tenant: str, task_ids: Sequence[str], now: float, detail: dict[str, Any] | None
    ) -> list[Control]:
        if not task_ids:
            return []
        return await self._write(
            lambda c: self._control.stop_waiting(c, tenant, task_ids, now, detail)
        )


def progress_params(
    op_id: str, node: str, done: int, skipped: int, cursor: int | None, now: float
) -> dict[str, Any]:
    return {
        "id": op_id,
        "node": node,
        "done": done,
        "skipped": skipped,
        "cursor": cursor,
        "now": now,
    }
