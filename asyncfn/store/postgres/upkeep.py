"""The PostgreSQL store's upkeep transitions, run by the engine's maintenance services (on any
node: rows are taken with SKIP LOCKED): expiry past the max event age, releasing Suspended
tasks whose node is gone, and retention."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from asyncfn.domain.states import TaskStatus
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
