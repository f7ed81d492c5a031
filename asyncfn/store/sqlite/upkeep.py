"""The SQLite store's upkeep transitions, run by the engine's maintenance services: expiry past
the max event age, releasing Suspended tasks whose node is gone, retention, and purge (an ended
task's data erased, its state history kept; the writer's `secure_delete` zeroes the freed bytes).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from asyncfn.domain.errors import TransitionRefused
from asyncfn.domain.states import TaskStatus
from asyncfn.store.base import PURGED_FIELDS, PurgeResult
from asyncfn.store.sqlite.outbox import SqliteOutbox
from asyncfn.store.sqlite.rows import json_text
from asyncfn.store.sqlite.writes import append_events

Connection = sqlite3.Connection
S = TaskStatus

EXPIRED_ERROR = json_text(
    {
        "type": "Expired",
        "message": "not started within the function's max event age",
        "traceback": None,
    }
)
NODE_LOST = "NodeLost"
"""The outcome of an attempt whose node went away while the task was suspended."""


class SqliteUpkeep:
    """Upkeep ops over the named statements `q`."""

    def __init__(self, q: Mapping[str, str]) -> None:
        self.q = q
        self.outbox = SqliteOutbox(q)

    def expire(
        self,
        conn: Connection,
        tenant: str,
        function: str,
        created_before: float,
        now: float,
        limit: int,
    ) -> int:
        params = {
            "tenant": tenant,
            "function": function,
            "created_before": created_before,
            "now": now,
            "limit": limit,
            "error": EXPIRED_ERROR,
        }
        rows = conn.execute(self.q["expire_tasks"], params).fetchall()
        rows.sort()
        events = [(row, now, S.EXPIRED, json_text({"created_at": float(at)})) for row, at in rows]
        append_events(conn, self.q, events)
        self.outbox.enqueue(conn, [(row, S.EXPIRED) for row, _ in rows], now)
        return len(rows)

    def release_lost(
        self, conn: Connection, row: int, attempt: int, now: float, detail: dict[str, Any]
    ) -> bool:
        key = {"row": row, "attempt": attempt}
        if conn.execute(self.q["release_lost_task"], key).rowcount != 1:
            return False
        conn.execute(
            self.q["close_attempt"],
            {
                **key,
                "at": now,
                "outcome": NODE_LOST,
                "error": None,
                "cpu_ms": None,
                "max_rss_mb": None,
                "instance_id": None,
                "instance_started_at": None,
            },
        )
        append_events(conn, self.q, [(row, now, S.SUSPENDED, json_text(detail or None))])
        return True

    def purge_finished(self, conn: Connection, finished_before: float, limit: int) -> int:
        params = {"finished_before": finished_before, "limit": limit}
        count: int = conn.execute(self.q["purge_finished"], params).rowcount
        return count

    def forget_throttles(self, conn: Connection, before: float, limit: int) -> int:
        count: int = conn.execute(
            self.q["forget_throttles"], {"before": before, "limit": limit}
        ).rowcount
        return count

    def purge_task(
        self, conn: Connection, tenant: str, task_id: str, now: float
    ) -> PurgeResult | None:
        found = conn.execute(self.q["purge_target"], {"tenant": tenant, "id": task_id}).fetchone()
        if found is None:
            return None
        row, status, purged_at = found
        if not TaskStatus(status).terminal:
            raise TransitionRefused(task_id, status, "purged")
        return self._purge_row(conn, row, task_id, TaskStatus(status), purged_at, now)

    def purge_unretained(
        self, conn: Connection, tenant: str, function: str, now: float, limit: int
    ) -> int:
        params = {"tenant": tenant, "function": function, "limit": limit}
        found = conn.execute(self.q["unpurged_ended"], params).fetchall()
        for row, task_id, status in found:
            self._purge_row(conn, row, task_id, TaskStatus(status), None, now)
        return len(found)

    def _purge_row(
        self,
        conn: Connection,
        row: int,
        task_id: str,
        status: TaskStatus,
        purged_at: float | None,
        now: float,
    ) -> PurgeResult:
        """Erase the data of the ended task `row`; the event only on its first purge."""
        (first_at,) = conn.execute(self.q["purge_task_row"], {"row": row, "now": now}).fetchone()
        conn.execute(self.q["purge_task_attempts"], {"row": row})
        conn.execute(self.q["purge_task_logs"], {"row": row})
        changed = purged_at is None
        if changed:
            detail = json_text({"purged": list(PURGED_FIELDS)})
            append_events(conn, self.q, [(row, now, status, detail)])
        return PurgeResult(task_id, float(first_at), PURGED_FIELDS, changed)
