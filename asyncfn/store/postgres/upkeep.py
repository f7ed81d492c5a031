"""The PostgreSQL store's upkeep transitions, run by the engine's maintenance services (on any
node: rows are taken with SKIP LOCKED): expiry past the max event age, releasing Suspended
tasks whose node is gone, retention, and purge (an ended task's data erased, its state history
kept; the old row versions stay in the table files until VACUUM, or autovacuum, reclaims them)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from asyncfn.domain.errors import TransitionRefused
from asyncfn.domain.states import TaskStatus
from asyncfn.store.base import PURGED_FIELDS, PurgeResult
from asyncfn.store.postgres.outbox import PgOutbox
from asyncfn.store.postgres.rows import Conn, execute, fetch_all, fetch_one, json_text
from asyncfn.store.sqlite.upkeep import EXPIRED_ERROR, NODE_LOST

S = TaskStatus


class PgUpkeep:
    """Upkeep ops over the named statements `q`."""

    def __init__(self, q: Mapping[str, str], outbox: PgOutbox) -> None:
        self.q = q
        self.outbox = outbox

    async def expire(
        self,
        conn: Conn,
        tenant: str,
        function: str,
        created_before: float,
        now: float,
        limit: int,
    ) -> int:
        """In a transaction: the expiry in one statement, then the deliveries it owes."""
        params = {
            "tenant": tenant,
            "function": function,
            "created_before": created_before,
            "now": now,
            "limit": limit,
            "error": EXPIRED_ERROR,
        }
        found = await fetch_all(conn, self.q["expire_tasks"], params)
        sources = [row[1:] for row in found]
        status_of = {source[0]: S.EXPIRED for source in sources}
        await self.outbox.enqueue_sources(conn, sources, status_of, now)
        return len(found)

    async def release_lost(
        self, conn: Conn, row: int, attempt: int, now: float, detail: dict[str, Any]
    ) -> bool:
        params = {
            "row": row,
            "attempt": attempt,
            "now": now,
            "outcome": NODE_LOST,
            "detail": json_text(detail or None),
        }
        return await fetch_one(conn, self.q["release_lost_task"], params) is not None

    async def purge_finished(self, conn: Conn, finished_before: float, limit: int) -> int:
        params = {"finished_before": finished_before, "limit": limit}
        return await execute(conn, self.q["purge_finished"], params)

    async def forget_throttles(self, conn: Conn, before: float, limit: int) -> int:
        return await execute(conn, self.q["forget_throttles"], {"before": before, "limit": limit})

    async def purge_task(
        self, conn: Conn, tenant: str, task_id: str, now: float
    ) -> PurgeResult | None:
        """In a transaction: the task row locked, its data erased, the event on a first purge."""
        found = await fetch_one(conn, self.q["purge_target"], {"tenant": tenant, "id": task_id})
        if found is None:
            return None
        row, status, purged_at = found
        if not TaskStatus(status).terminal:
            raise TransitionRefused(task_id, status, "purged")
        return await self._purge_row(conn, row, task_id, TaskStatus(status), purged_at, now)

    async def purge_unretained(
        self, conn: Conn, tenant: str, function: str, now: float, limit: int
    ) -> int:
        """In a transaction: the tasks taken with SKIP LOCKED, so nodes sweeping together split
        them."""
        params = {"tenant": tenant, "function": function, "limit": limit}
        found = await fetch_all(conn, self.q["unpurged_ended"], params)
        for row, task_id, status in found:
            await self._purge_row(conn, row, task_id, TaskStatus(status), None, now)
        return len(found)

    async def _purge_row(
        self,
        conn: Conn,
        row: int,
        task_id: str,
        status: TaskStatus,
        purged_at: float | None,
        now: float,
    ) -> PurgeResult:
        """Erase the data of the ended task `row` (locked by the caller); the event only on
        its first purge."""
        erased = await fetch_one(conn, self.q["purge_task_row"], {"row": row, "now": now})
        assert erased is not None  # the row is locked and ended
        await execute(conn, self.q["purge_task_attempts"], {"row": row})
        await execute(conn, self.q["purge_task_logs"], {"row": row})
        changed = purged_at is None
        if changed:
            event = {
                "rows": [row],
                "ats": [now],
                "statuses": [str(status)],
                "details": [json_text({"purged": list(PURGED_FIELDS)})],
            }
            await execute(conn, self.q["insert_event"], event)
        return PurgeResult(task_id, float(erased[0]), PURGED_FIELDS, changed)
