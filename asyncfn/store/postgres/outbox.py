"""The PostgreSQL store's outbox: the destination deliveries a terminal transition owes, written
in that transition's transaction, then claimed with a lease (SKIP LOCKED) and marked delivered or
dead. The policy is the domain's (`destinations_for`), read against the function row."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from asyncfn.domain.deadletters import is_dead_letter
from asyncfn.domain.models import Delivery, FunctionSpec
from asyncfn.domain.policies import destinations_for
from asyncfn.domain.states import TaskStatus
from asyncfn.store.postgres.deadletters import PgDeadLetters
from asyncfn.store.postgres.rows import (
    Conn,
    delivery_from_row,
    execute,
    fetch_all,
    fetch_one,
    function_from_row,
    json_text,
    new_delivery_id,
)

Source = tuple[Any, ...]
"""A task that just ended, as `outbox_sources` selects it: row, tenant, id, function, then the
function's 7 columns (NULLs when it is gone)."""


class PgOutbox:
    """Outbox ops over the named statements `q`."""

    def __init__(self, q: Mapping[str, str]) -> None:
        self.q = q
        self.dead_letters = PgDeadLetters(q)

    async def enqueue(self, conn: Conn, ended: Sequence[tuple[int, TaskStatus]], now: float) -> int:
        """Insert the deliveries owed by tasks that just ended as (row, status)."""
        if not ended:
            return 0
        status_of = dict(ended)
        sources = await fetch_all(conn, self.q["outbox_sources"], {"rows": list(status_of)})
        return await self.enqueue_sources(conn, sources, status_of, now)

    async def enqueue_sources(
        self,
        conn: Conn,
        sources: Iterable[Source],
        status_of: Mapping[int, TaskStatus],
        now: float,
    ) -> int:
        """As `enqueue`, from source rows the transition's own statement already returned;
        the dead letters among them are listed too."""
        specs: dict[tuple[str, str], FunctionSpec | None] = {}
        columns: dict[str, list[Any]] = {
            k: [] for k in ("ids", "rows", "tenants", "task_ids", "functions", "destinations")
        }
        dead: list[int] = []
        for source in sources:
            row, tenant, task_id, function = source[:4]
            key = (tenant, function)
            if key not in specs:
                specs[key] = None if source[4] is None else function_from_row(source[4:])
            spec = specs[key]
            if spec is None:
                continue
            if is_dead_letter(spec.async_policy, status_of[row]):
                dead.append(row)
            for destination in destinations_for(spec.async_policy, status_of[row]):
                columns["ids"].append(new_delivery_id())
                columns["rows"].append(row)
                columns["tenants"].append(tenant)
                columns["task_ids"].append(task_id)
                columns["functions"].append(function)
                columns["destinations"].append(json_text(destination.to_config()))
        if columns["ids"]:
            await execute(conn, self.q["insert_delivery"], {**columns, "now": now})
        await self.dead_letters.record(conn, dead, now)
        return len(columns["ids"])

    async def claim(
        self, conn: Conn, node: str, now: float, lease_until: float, limit: int
    ) -> list[Delivery]:
        params = {"node": node, "now": now, "lease_until": lease_until, "limit": limit}
        found = await fetch_all(conn, self.q["claim_deliveries"], params)
        return sorted(map(delivery_from_row, found), key=lambda d: (d.next_at, d.id))

    async def done(self, conn: Conn, delivery_id: str, attempt: int, now: float) -> bool:
        params = {"id": delivery_id, "attempt": attempt, "now": now}
        return await execute(conn, self.q["delivery_done"], params) == 1

    async def failed(
        self, conn: Conn, delivery_id: str, attempt: int, error: str, next_at: float | None
    ) -> bool:
        params = {"id": delivery_id, "attempt": attempt, "error": error, "next_at": next_at}
        return await execute(conn, self.q["delivery_failed"], params) == 1

    async def of_row(self, conn: Conn, row: int) -> tuple[Delivery, ...]:
        found = await fetch_all(conn, self.q["task_deliveries"], {"row": row})
        return tuple(map(delivery_from_row, found))

    async def of_task(self, conn: Conn, tenant: str, task_id: str) -> list[Delivery] | None:
        found = await fetch_one(conn, self.q["task_row"], {"tenant": tenant, "id": task_id})
        return None if found is None else list(await self.of_row(conn, found[0]))
