"""The PostgreSQL store's transitions on functions, submission and a task's life in its
attempts. Each runs on one pooled connection; most are one statement (CTEs write the task, its
event and its attempt together), the rest run inside the store's transaction.

control.py holds a user's stop, suspend, resume and rerun; upkeep.py expiry, lost suspended
tasks and retention. Every terminal transition also writes its deliveries (outbox.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any, TypeVar

from asyncfn.domain.models import ClaimedTask, FunctionSpec, Submission, Submitted
from asyncfn.domain.states import TaskStatus, sources_of
from asyncfn.store.base import Finish, NewLogLine, RetryLater
from asyncfn.store.postgres.outbox import PgOutbox
from asyncfn.store.postgres.rows import (
    Conn,
    claimed_from_row,
    execute,
    fetch_all,
    fetch_one,
    function_config,
    json_text,
)
from asyncfn.store.sqlite.writes import IN_ATTEMPT, new_task_ids
from asyncfn.store.taskkeys import key_arrays, key_columns

S = TaskStatus
Ending = TypeVar("Ending", Finish, RetryLater)
Event = tuple[int, float, str, str | None]
"""An event row to append: (task row, at, status, detail JSON)."""


@cache
def ending_sources(status: TaskStatus) -> str:
    """The statuses an attempt may end in `status` from (TRANSITIONS ∩ in an attempt), as the
    comma-separated list `finish_task` and `retry_task` read."""
    if not (status.terminal or status == S.RETRYING):
        raise ValueError(f"an attempt ends in a terminal status or Retrying, not {status}")
    sources = sorted(sources_of(status) & IN_ATTEMPT)
    if not sources:
        raise ValueError(f"a running attempt cannot end as {status}")
    return ",".join(sources)


def first_per_row(items: Sequence[Ending]) -> dict[int, Ending]:
    """The first item of each task row: a later one for the same row would find the attempt
    already ended, so its guard misses (as when the items run one by one)."""
    first: dict[int, Ending] = {}
    for item in items:
        first.setdefault(item.row, item)
    return first


def _with_duration(
    detail: dict[str, Any] | None, duration_ms: float | None
) -> dict[str, Any] | None:
    merged = dict(detail or {})
    if duration_ms is not None:
        merged["duration_ms"] = duration_ms
    return merged or None


def _ending_columns(items: Sequence[Finish | RetryLater]) -> dict[str, list[Any]]:
    """The array parameters `finish_task` and `retry_task` share."""
    return {
        "rows": [i.row for i in items],
        "attempts": [i.attempt for i in items],
        "ats": [i.at for i in items],
        "errors": [json_text(i.error) for i in items],
        "instance_ids": [(i.detail or {}).get("instance_id") for i in items],
        "cpu_ms": [i.resources.cpu_ms if i.resources else None for i in items],
        "max_rss_mb": [i.resources.max_rss_mb if i.resources else None for i in items],
        "instance_started_ats": [i.instance_started_at for i in items],
    }


PLANNED_ROWS_MAX = 16
"""Inserts of at most this many tasks are not prepared: planned for their values each time."""


class PgWrites:
    """Transition ops over the named statements `q`."""

    def __init__(self, q: Mapping[str, str]) -> None:
        self.q = q
        self.outbox = PgOutbox(q)

    # -- functions and code ----------------------------------------------------------------
    async def put_function(self, conn: Conn, spec: FunctionSpec, now: float) -> bool:
        params = {
            "tenant": spec.tenant,
            "name": spec.name,
            "config": function_config(spec),
            "code_sha256": spec.code_sha256,
            "created_at": spec.created_at or now,
            "updated_at": now,
        }
        row = await fetch_one(conn, self.q["upsert_function"], params)
        await self._catalog_changed(conn, spec.tenant, spec.name)
        return bool(row and row[0])

    async def delete_function(self, conn: Conn, tenant: str, name: str, now: float) -> int | None:
        """In a transaction: the function row is locked first, so a concurrent put waits."""
        key = {"tenant": tenant, "name": name}
        if await fetch_one(conn, self.q["function_exists"], key) is None:
            return None
        params = {
            "tenant": tenant,
            "function": name,
            "now": now,
            "detail": json_text({"reason": "function deleted"}),
        }
        sources = await fetch_all(conn, self.q["invalidate_waiting_tasks"], params)
        # The deliveries read the function's policy, so they go before the function does.
        status_of = {source[0]: S.INVALID for source in sources}
        await self.outbox.enqueue_sources(conn, sources, status_of, now)
        await execute(conn, self.q["delete_function"], key)
        await self._catalog_changed(conn, tenant, name)
        return len(sources)

    async def put_code(self, conn: Conn, sha256: str, data: bytes, now: float) -> str:
        params = {"sha256": sha256, "data": data, "size": len(data), "now": now}
        await execute(conn, self.q["insert_code"], params)
        return sha256

    async def set_function_code(
        self, conn: Conn, tenant: str, name: str, sha256: str, now: float
    ) -> tuple[Any, ...] | None:
        params = {"tenant": tenant, "name": name, "sha256": sha256, "now": now}
        row = await fetch_one(conn, self.q["set_function_code"], params)
        if row is not None:
            await self._catalog_changed(conn, tenant, name)
        return row

    async def set_function_paused(
        self, conn: Conn, tenant: str, name: str, paused: bool, now: float
    ) -> tuple[Any, ...] | None:
        params = {"tenant": tenant, "name": name, "paused": paused, "now": now}
        row = await fetch_one(conn, self.q["set_function_paused"], params)
        if row is not None:
            await self._catalog_changed(conn, tenant, name)
        return row

    async def _catalog_changed(self, conn: Conn, tenant: str, name: str) -> None:
        """Every node reloads the function when this transaction commits (the caller's)."""
        await execute(conn, self.q["notify_catalog"], {"tenant": tenant, "name": name})

    # -- transitions -----------------------------------------------------------------------
    async def submit_many(
        self,
        conn: Conn,
        tenant: str,
        function: str,
        submissions: Sequence[Submission],
        now: float,
        max_attempts: int,
        default_priority: int,
    ) -> list[Submitted]:
        """One statement for the whole batch (tasks, first events, wake-up). A client-given id
        repeated in the batch is inserted once: the first holds it."""
        generated = iter(new_task_ids(sum(s.task_id is None for s in submissions), now))
        ids = [next(generated) if s.task_id is None else s.task_id for s in submissions]
        first: dict[str, Submission] = {}
        for task_id, item in zip(ids, submissions, strict=True):
            first.setdefault(task_id, item)
        items = list(first.values())
        params = {
            "ids": list(first),
            "priorities": [default_priority if i.priority is None else i.priority for i in items],
            "payloads": [i.payload for i in items],
            "run_ats": [now if i.run_at is None else i.run_at for i in items],
            "details": [
                json_text({"run_at": i.run_at}) if i.run_at is not None and i.run_at > now else None
                for i in items
            ],
            "attributes": [json_text(i.attributes) for i in items],
            **key_arrays([key_columns(i.keys) for i in items]),
            "tenant": tenant,
            "function": function,
            "now": now,
            "max_attempts": max_attempts,
        }
        # A few rows are planned for their values: the prepared generic plan of this statement
        # took twice as long for them on a table not yet analyzed (batches keep it).
        prepare = None if len(items) > PLANNED_ROWS_MAX else False
        found = await fetch_all(conn, self.q["insert_task"], params, prepare=prepare)
        answers = {
            task_id: Submitted(task_id, TaskStatus(status), created, row)
            for task_id, row, created, status in found
            if row is not None
        }
        missing = [task_id for task_id in first if task_id not in answers]
        if missing:  # committed by another node after the insert's snapshot: read them now
            key = {"tenant": tenant, "ids": missing}
            for task_id, row, status in await fetch_all(conn, self.q["tasks_row_status"], key):
                answers[task_id] = Submitted(task_id, TaskStatus(status), False, row)
        seen: set[str] = set()
        out: list[Submitted] = []
        for task_id in ids:
            answer = answers[task_id]
            if task_id in seen:
                answer = Submitted(task_id, answer.status, False, answer.row)
            seen.add(task_id)
            out.append(answer)
        return out

    async def claim_ready(
        self,
        conn: Conn,
        tenant: str,
        function: str,
        node: str,
        limit: int,
        now: float,
        lease_until: float,
        created_after: float,
    ) -> list[ClaimedTask]:
        params = {
            "tenant": tenant,
            "function": function,
            "node": node,
            "limit": limit,
            "now": now,
            "lease_until": lease_until,
            "created_after": created_after,
        }
        return [claimed_from_row(r) for r in await fetch_all(conn, self.q["claim_ready"], params)]

    async def finish(self, conn: Conn, finishes: Sequence[Finish]) -> list[bool]:
        """In a transaction: the endings in one statement, then the deliveries they owe."""
        first = first_per_row(finishes)
        items = list(first.values())
        params = {
            **_ending_columns(items),
            "statuses": [f.status.value for f in items],
            "sources": [ending_sources(f.status) for f in items],
            "results": [json_text(f.result) for f in items],
            "details": [json_text(_with_duration(f.detail, f.duration_ms)) for f in items],
        }
        sources = await fetch_all(conn, self.q["finish_task"], params)
        ended = {source[0] for source in sources}
        if sources:
            status_of = {row: first[row].status for row in ended}
            at = max(first[row].at for row in ended)
            await self.outbox.enqueue_sources(conn, sources, status_of, at)
        return [f.row in ended and first[f.row] is f for f in finishes]

    async def retry_later(self, conn: Conn, retries: Sequence[RetryLater]) -> list[bool]:
        first = first_per_row(retries)
        items = list(first.values())
        details: list[str | None] = []
        for r in items:
            brief = {"type": r.error.get("type"), "message": r.error.get("message")}
            detail = {**(r.detail or {}), "error": brief, "run_at": r.run_at}
            if r.duration_ms is not None:
                detail["duration_ms"] = r.duration_ms
            details.append(json_text(detail))
        params = {
            **_ending_columns(items),
            "sources": [ending_sources(S.RETRYING)] * len(items),
            "run_ats": [r.run_at for r in items],
            "details": details,
        }
        moved = {row for (row,) in await fetch_all(conn, self.q["retry_task"], params)}
        return [r.row in moved and first[r.row] is r for r in retries]

    async def promote_due(self, conn: Conn, now: float, limit: int) -> list[tuple[str, str]]:
        rows = await fetch_all(conn, self.q["promote_due"], {"now": now, "limit": limit})
        return [(tenant, function) for _, tenant, function, _ in rows]

    async def renew_leases(self, conn: Conn, node: str, rows: Sequence[int], until: float) -> int:
        params = {"node": node, "rows": list(rows), "until": until}
        return await execute(conn, self.q["renew_leases"], params)

    async def save_progress(
        self, conn: Conn, row: int, attempt: int, fraction: float, message: str | None
    ) -> bool:
        progress = json_text({"fraction": fraction, "message": message})
        params = {"row": row, "attempt": attempt, "progress": progress}
        return await execute(conn, self.q["save_progress"], params) == 1

    async def save_checkpoint(self, conn: Conn, row: int, attempt: int, checkpoint: Any) -> bool:
        params = {"row": row, "attempt": attempt, "checkpoint": json_text(checkpoint)}
        return await execute(conn, self.q["save_checkpoint"], params) == 1

    async def append_logs(self, conn: Conn, lines: Sequence[NewLogLine]) -> None:
        """In a transaction: lock the tasks' logs, then number and insert the lines."""
        await execute(conn, self.q["lock_task_logs"], {"rows": sorted({x.row for x in lines})})
        params = {
            "rows": [x.row for x in lines],
            "ats": [x.at for x in lines],
            "streams": [x.stream for x in lines],
            "lines": [x.line for x in lines],
        }
        await execute(conn, self.q["insert_log"], params)

    async def append_events(self, conn: Conn, events: Sequence[Event]) -> None:
        """Append (row, at, status, detail JSON) events to tasks the caller holds locked."""
        if events:
            params = {
                "rows": [e[0] for e in events],
                "ats": [e[1] for e in events],
                "statuses": [str(e[2]) for e in events],
                "details": [e[3] for e in events],
            }
            await execute(conn, self.q["insert_event"], params)
