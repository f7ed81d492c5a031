"""The SQLite store's upkeep transitions, run by the engine's maintenance services: expiry past
the max event age, releasing Suspended tasks whose node is gone, and retention.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from asyncfn.domain.states import TaskStatus
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
