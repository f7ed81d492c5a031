"""The SQLite store's reads, each run on a read-only connection of the reader pool.

A read that takes several statements runs them in one read transaction, so it sees one snapshot
even while the writer commits.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any

import orjson

from asyncfn.domain import limits
from asyncfn.domain.keystats import KeyStats
from asyncfn.domain.models import ConcurrencyLimit, FunctionSpec, LogLine, Task, TaskQuery
from asyncfn.domain.states import TaskStatus
from asyncfn.domain.stats import RECENT_ENDED, FunctionStats, QueueStat
from asyncfn.store.base import LostTask
from asyncfn.store.sqlite.flow import SqliteFlow
from asyncfn.store.sqlite.keys import SqliteKeys
from asyncfn.store.sqlite.outbox import delivery_from_row
from asyncfn.store.sqlite.plumbing import SqlitePlumbing
from asyncfn.store.sqlite.rows import (
    attempt_from_row,
    event_from_row,
    function_from_row,
    lost_from_row,
    task_from_row,
)

NO_CURSOR = 2**63 - 1
"""Larger than any row: the `before` of a first page."""


@contextmanager
def snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    """One read transaction (the connection is in autocommit mode otherwise)."""
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.execute("COMMIT")


def stats_from_rows(
    counts: dict[TaskStatus, int],
    ended: Sequence[Sequence[Any]],
    attempts: Sequence[Sequence[Any]],
    finished_last_minute: int,
    submitted_last_minute: int = 0,
    delayed: int = 0,
) -> FunctionStats:
    """FunctionStats from the rows `recent_ended_tasks` (row, created_at, run_at, started_at,
    finished_at) and `recent_attempts` (started_at, finished_at, cpu_ms, max_rss_mb) select,
    and the counts of `finished_since`, `submitted_since` and `delayed_at`, in either store."""
    waits = tuple(
        max(0.0, started - max(created, run_at))
        for _, created, run_at, started, _ in ended
        if started is not None
    )
    rss = [a[3] for a in attempts if a[3] is not None]
    return FunctionStats(
        counts=counts,
        queue_wait_s=waits,
        run_s=tuple(max(0.0, a[1] - a[0]) for a in attempts if a[1] is not None),
        end_to_end_s=tuple(max(0.0, fin - created) for _, created, _, _, fin in ended),
        cpu_ms=float(sum(a[2] for a in attempts if a[2] is not None)),
        max_rss_mb=max(rss) if rss else None,
        finished_last_minute=int(finished_last_minute),
        submitted_last_minute=int(submitted_last_minute),
        delayed=int(delayed),
    )


class SqliteReads:
    """Read queries over the named statements `q`."""

    def __init__(self, q: Mapping[str, str]) -> None:
        self.q = q
        self._keys = SqliteKeys()

    def get_function(self, conn: sqlite3.Connection, tenant: str, name: str) -> FunctionSpec | None:
        row = conn.execute(self.q["get_function"], {"tenant": tenant, "name": name}).fetchone()
        return None if row is None else function_from_row(row)

    def list_functions(self, conn: sqlite3.Connection, tenant: str | None) -> list[FunctionSpec]:
        rows = conn.execute(self.q["list_functions"], {"tenant": tenant}).fetchall()
        return [function_from_row(row) for row in rows]

    def get_code(self, conn: sqlite3.Connection, sha256: str) -> bytes | None:
        row = conn.execute(self.q["get_code"], {"sha256": sha256}).fetchone()
        return None if row is None else bytes(row[0])

    def get_task(self, conn: sqlite3.Connection, tenant: str, task_id: str) -> Task | None:
        with snapshot(conn):
            row = conn.execute(self.q["get_task"], {"tenant": tenant, "id": task_id}).fetchone()
            if row is None:
                return None
            key = {"row": row[0]}
            events = tuple(map(event_from_row, conn.execute(self.q["task_events"], key)))
            attempts = tuple(map(attempt_from_row, conn.execute(self.q["task_attempts"], key)))
            found = conn.execute(self.q["task_deliveries"], key)
            deliveries = tuple(map(delivery_from_row, found))
            (purged_at,) = conn.execute(self.q["task_purged_at"], key).fetchone()
            keys = self._keys.task_keys(conn, row[0])
        task = task_from_row(row, events, attempts)
        return dataclasses.replace(task, deliveries=deliveries, purged_at=purged_at, keys=keys)

    def list_tasks(
        self, conn: sqlite3.Connection, query: TaskQuery
    ) -> tuple[list[Task], int | None]:
        params: dict[str, Any] = {
            "tenant": query.tenant,
            "function": query.function,
            "status": query.status,
            "since": query.since,
            "until": query.until,
            "before": NO_CURSOR if query.cursor is None else query.cursor,
            "limit": query.limit + 1,
        }
        name = "list_tasks" if query.function is None else "list_function_tasks"
        rows = conn.execute(self.q[name], params).fetchall()
        tasks = [task_from_row(row) for row in rows[: query.limit]]
        if len(rows) > len(tasks) and tasks:
            return tasks, tasks[-1].row
        return tasks, None

    def read_logs(
        self, conn: sqlite3.Connection, tenant: str, task_id: str, after: int, limit: int
    ) -> list[LogLine] | None:
        with snapshot(conn):
            row = conn.execute(
                self.q["task_row_status"], {"tenant": tenant, "id": task_id}
            ).fetchone()
            if row is None:
                return None
            params = {"row": row[0], "after": after, "limit": limit}
            return [LogLine(*line) for line in conn.execute(self.q["read_logs"], params)]

    def find_lost(
        self, conn: sqlite3.Connection, node: str | None, now: float, limit: int
    ) -> list[LostTask]:
        params = {"node": node, "now": now, "limit": limit}
        return [lost_from_row(row) for row in conn.execute(self.q["find_lost"], params)]

    def next_run_at(self, conn: sqlite3.Connection, tenant: str, function: str) -> float | None:
        earliest: float | None = None
        below = limits.PRIORITY[1] + 1
        while True:
            level = {"tenant": tenant, "function": function, "below": below}
            (priority,) = conn.execute(self.q["top_priority_below"], level).fetchone()
            if priority is None:
                return earliest
            params = {"tenant": tenant, "function": function, "priority": priority}
            (at,) = conn.execute(self.q["next_run_at"], params).fetchone()
            earliest = at if earliest is None else min(earliest, at)
            below = priority

    def next_retry_at(self, conn: sqlite3.Connection) -> float | None:
        at: float | None = conn.execute(self.q["next_retry_at"]).fetchone()[0]
        return at

    def count_by_status(
        self, conn: sqlite3.Connection, tenant: str, function: str
    ) -> dict[TaskStatus, int]:
        """Every status, 0 for those no task is in."""
        counts = dict.fromkeys(TaskStatus, 0)
        params = {"tenant": tenant, "function": function}
        for status, count in conn.execute(self.q["count_by_status"], params):
            counts[TaskStatus(status)] = count
        return counts

    def queue_stats(self, conn: sqlite3.Connection) -> list[QueueStat]:
        return [
            QueueStat(tenant, function, count, oldest)
            for tenant, function, count, oldest in conn.execute(self.q["queue_stats"])
        ]

    def function_stats(
        self, conn: sqlite3.Connection, tenant: str, function: str, now: float, recent: int
    ) -> FunctionStats:
        key = {"tenant": tenant, "function": function}
        with snapshot(conn):
            counts = self.count_by_status(conn, tenant, function)
            ended = conn.execute(self.q["recent_ended_tasks"], {**key, "limit": recent}).fetchall()
            rows = orjson.dumps([r[0] for r in ended]).decode()
            attempts = conn.execute(self.q["recent_attempts"], {"rows": rows}).fetchall()
            minute_ago = {**key, "since": now - 60.0}
            (finished,) = conn.execute(self.q["finished_since"], minute_ago).fetchone()
            (submitted,) = conn.execute(self.q["submitted_since"], minute_ago).fetchone()
            (delayed,) = conn.execute(self.q["delayed_at"], {**key, "now": now}).fetchone()
        return stats_from_rows(counts, ended, attempts, finished, submitted, delayed)


class SqliteReadStore(SqlitePlumbing):
    """`SqliteStore`'s task-read and stats methods (the Store protocol's), kept here so the store's
    module does not grow; they run on its writer and readers like the rest."""

    _reads: SqliteReads
    _flow: SqliteFlow

    async def get_task(self, tenant: str, task_id: str) -> Task | None:
        return await self._read(partial(self._reads.get_task, tenant=tenant, task_id=task_id))

    async def list_tasks(self, query: TaskQuery) -> tuple[list[Task], int | None]:
        return await self._read(partial(self._reads.list_tasks, query=query))

    async def read_logs(
        self, tenant: str, task_id: str, after: int = 0, limit: int = 10_000
    ) -> list[LogLine] | None:
        fn = partial(
            self._reads.read_logs, tenant=tenant, task_id=task_id, after=after, limit=limit
        )
        return await self._read(fn)

    async def find_lost(self, node: str | None, now: float, limit: int) -> list[LostTask]:
        return await self._read(partial(self._reads.find_lost, node=node, now=now, limit=limit))

    async def next_run_at(self, tenant: str, function: str) -> float | None:
        return await self._read(partial(self._reads.next_run_at, tenant=tenant, function=function))

    async def next_retry_at(self) -> float | None:
        return await self._read(self._reads.next_retry_at)

    async def count_by_status(self, tenant: str, function: str) -> dict[TaskStatus, int]:
        fn = partial(self._reads.count_by_status, tenant=tenant, function=function)
        return await self._read(fn)

    async def queue_stats(self) -> list[QueueStat]:
        return await self._read(self._reads.queue_stats)

    async def running_counts(self) -> dict[tuple[str, str], int]:
        return await self._read(self._flow.running_counts)

    async def function_stats(
        self, tenant: str, function: str, now: float, recent: int = RECENT_ENDED
    ) -> FunctionStats:
        fn = partial(
            self._reads.function_stats, tenant=tenant, function=function, now=now, recent=recent
        )
        return await self._read(fn)

    async def key_stats(
        self, tenant: str, function: str, limits: Sequence[ConcurrencyLimit], top: int = 10
    ) -> list[KeyStats]:
        keys = self._flow.keys
        fn = partial(keys.stats, tenant=tenant, function=function, limits=limits, top=top)
        return await self._read(fn)
