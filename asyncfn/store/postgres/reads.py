"""The PostgreSQL store's reads, each on a pooled connection. A read of several statements runs
in one REPEATABLE READ, READ ONLY transaction (the store opens it), so it sees one snapshot."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from asyncfn.domain.keystats import KeyStats
from asyncfn.domain.models import ConcurrencyLimit, FunctionSpec, LogLine, Task, TaskQuery
from asyncfn.domain.states import TaskStatus
from asyncfn.domain.stats import RECENT_ENDED, FunctionStats, QueueStat
from asyncfn.store.base import LostTask
from asyncfn.store.postgres.flow import PgFlow
from asyncfn.store.postgres.keys import PgKeys
from asyncfn.store.postgres.outbox import PgOutbox
from asyncfn.store.postgres.plumbing import PgPlumbing
from asyncfn.store.postgres.rows import (
    Conn,
    attempt_from_row,
    event_from_row,
    fetch_all,
    fetch_one,
    function_from_row,
    lost_from_row,
    task_from_row,
)
from asyncfn.store.sqlite.reads import stats_from_rows

NO_CURSOR = 2**63 - 1
"""Larger than any row: the `before` of a first page."""


class PgReads:
    """Read queries over the named statements `q`."""

    def __init__(self, q: Mapping[str, str], outbox: PgOutbox) -> None:
        self.q = q
        self._outbox = outbox
        self._keys = PgKeys()

    async def get_function(self, conn: Conn, tenant: str, name: str) -> FunctionSpec | None:
        row = await fetch_one(conn, self.q["get_function"], {"tenant": tenant, "name": name})
        return None if row is None else function_from_row(row)

    async def list_functions(self, conn: Conn, tenant: str | None) -> list[FunctionSpec]:
        rows = await fetch_all(conn, self.q["list_functions"], {"tenant": tenant})
        return [function_from_row(row) for row in rows]

    async def get_code(self, conn: Conn, sha256: str) -> bytes | None:
        row = await fetch_one(conn, self.q["get_code"], {"sha256": sha256})
        return None if row is None else bytes(row[0])

    async def get_task(self, conn: Conn, tenant: str, task_id: str) -> Task | None:
        """In a snapshot."""
        row = await fetch_one(conn, self.q["get_task"], {"tenant": tenant, "id": task_id})
        if row is None:
            return None
        key = {"row": row[0]}
        events = tuple(map(event_from_row, await fetch_all(conn, self.q["task_events"], key)))
        attempts = tuple(map(attempt_from_row, await fetch_all(conn, self.q["task_attempts"], key)))
        deliveries = await self._outbox.of_row(conn, row[0])
        purged = await fetch_one(conn, self.q["task_purged_at"], key)
        purged_at = None if purged is None else purged[0]
        keys = await self._keys.task_keys(conn, row[0])
        task = task_from_row(row, events, attempts)
        return dataclasses.replace(task, deliveries=deliveries, purged_at=purged_at, keys=keys)

    async def list_tasks(self, conn: Conn, query: TaskQuery) -> tuple[list[Task], int | None]:
        params: dict[str, Any] = {
            "tenant": query.tenant,
            "function": query.function,
            "status": None if query.status is None else str(query.status),
            "since": query.since,
            "until": query.until,
            "before": NO_CURSOR if query.cursor is None else query.cursor,
            "limit": query.limit + 1,
        }
        name = "list_tasks" if query.function is None else "list_function_tasks"
        rows = await fetch_all(conn, self.q[name], params)
        tasks = [task_from_row(row) for row in rows[: query.limit]]
        if len(rows) > len(tasks) and tasks:
            return tasks, tasks[-1].row
        return tasks, None

    async def read_logs(
        self, conn: Conn, tenant: str, task_id: str, after: int, limit: int
    ) -> list[LogLine] | None:
        """In a snapshot."""
        row = await fetch_one(conn, self.q["task_row_status"], {"tenant": tenant, "id": task_id})
        if row is None:
            return None
        params = {"row": row[0], "after": after, "limit": limit}
        return [LogLine(*line) for line in await fetch_all(conn, self.q["read_logs"], params)]

    async def find_lost(
        self, conn: Conn, node: str | None, now: float, limit: int
    ) -> list[LostTask]:
        params = {"node": node, "now": now, "limit": limit}
        return [lost_from_row(row) for row in await fetch_all(conn, self.q["find_lost"], params)]

    async def next_run_at(self, conn: Conn, tenant: str, function: str) -> float | None:
        row = await fetch_one(conn, self.q["next_run_at"], {"tenant": tenant, "function": function})
        return None if row is None or row[0] is None else float(row[0])

    async def next_retry_at(self, conn: Conn) -> float | None:
        row = await fetch_one(conn, self.q["next_retry_at"])
        return None if row is None or row[0] is None else float(row[0])

    async def count_by_status(
        self, conn: Conn, tenant: str, function: str
    ) -> dict[TaskStatus, int]:
        """Every status, 0 for those no task is in."""
        counts = dict.fromkeys(TaskStatus, 0)
        params = {"tenant": tenant, "function": function}
        for status, count in await fetch_all(conn, self.q["count_by_status"], params):
            counts[TaskStatus(status)] = int(count)
        return counts

    async def queue_stats(self, conn: Conn) -> list[QueueStat]:
        return [
            QueueStat(tenant, function, int(count), oldest)
            for tenant, function, count, oldest in await fetch_all(conn, self.q["queue_stats"])
        ]

    async def function_stats(
        self, conn: Conn, tenant: str, function: str, now: float, recent: int
    ) -> FunctionStats:
        """In a snapshot."""
        key = {"tenant": tenant, "function": function}
        counts = await self.count_by_status(conn, tenant, function)
        ended = await fetch_all(conn, self.q["recent_ended_tasks"], {**key, "limit": recent})
        rows = {"rows": [r[0] for r in ended]}
        attempts = await fetch_all(conn, self.q["recent_attempts"], rows)
        minute_ago = {**key, "since": now - 60.0}
        finished = await fetch_one(conn, self.q["finished_since"], minute_ago)
        submitted = await fetch_one(conn, self.q["submitted_since"], minute_ago)
        delayed = await fetch_one(conn, self.q["delayed_at"], {**key, "now": now})
        return stats_from_rows(
            counts,
            ended,
            attempts,
            0 if finished is None else finished[0],
            0 if submitted is None else submitted[0],
            0 if delayed is None else delayed[0],
        )


class PgReadStore(PgPlumbing):
    """`PostgresStore`'s task-read and stats methods (the Store protocol's), kept here so the
    store's module does not grow."""

    _reads: PgReads
    _flow: PgFlow

    async def get_task(self, tenant: str, task_id: str) -> Task | None:
        return await self._snapshot(lambda c: self._reads.get_task(c, tenant, task_id))

    async def list_tasks(self, query: TaskQuery) -> tuple[list[Task], int | None]:
        return await self._run(lambda c: self._reads.list_tasks(c, query))

    async def read_logs(
        self, tenant: str, task_id: str, after: int = 0, limit: int = 10_000
    ) -> list[LogLine] | None:
        return await self._snapshot(
            lambda c: self._reads.read_logs(c, tenant, task_id, after, limit)
        )

    async def find_lost(self, node: str | None, now: float, limit: int) -> list[LostTask]:
        return await self._run(lambda c: self._reads.find_lost(c, node, now, limit))

    async def next_run_at(self, tenant: str, function: str) -> float | None:
        return await self._run(lambda c: self._reads.next_run_at(c, tenant, function))

    async def next_retry_at(self) -> float | None:
        return await self._run(self._reads.next_retry_at)

    async def count_by_status(self, tenant: str, function: str) -> dict[TaskStatus, int]:
        return await self._run(lambda c: self._reads.count_by_status(c, tenant, function))

    async def queue_stats(self) -> list[QueueStat]:
        return await self._run(self._reads.queue_stats)

    async def running_counts(self) -> dict[tuple[str, str], int]:
        return await self._run(self._flow.running_counts)

    async def function_stats(
        self, tenant: str, function: str, now: float, recent: int = RECENT_ENDED
    ) -> FunctionStats:
        return await self._snapshot(
            lambda c: self._reads.function_stats(c, tenant, function, now, recent)
        )

    async def key_stats(
        self, tenant: str, function: str, limits: Sequence[ConcurrencyLimit], top: int = 10
    ) -> list[KeyStats]:
        keys = self._flow.keys
        return await self._snapshot(lambda c: keys.stats(c, tenant, function, limits, top))
