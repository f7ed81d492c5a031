"""The SQLite store's outbox: the destination deliveries a terminal transition owes, written in
that transition's transaction, then claimed with a lease and marked delivered or dead.

The store holds no policy of its own: `enqueue` reads the ended task's function row inside the
op and asks `domain.policies.destinations_for` which destinations the status calls for.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from asyncfn.domain.deadletters import is_dead_letter
from asyncfn.domain.models import Delivery, Destination, FunctionSpec
from asyncfn.domain.policies import destinations_for
from asyncfn.domain.states import TaskStatus
from asyncfn.store.sqlite.deadletters import SqliteDeadLetters
from asyncfn.store.sqlite.rows import function_from_row, json_text

Connection = sqlite3.Connection


def new_delivery_id() -> str:
    """32 random hex digits: also a valid task id, so a chained task can be de-duplicated by it."""
    return os.urandom(16).hex()


def delivery_from_row(row: tuple[Any, ...]) -> Delivery:
    """From the 12 columns `task_deliveries` selects (and `claim_deliveries` returns)."""
    (id_, row_id, tenant, task_id, function, destination, status, attempts, next_at) = row[:9]
    created_at, delivered_at, last_error = row[9:]
    return Delivery(
        id=id_,
        row=row_id,
        tenant=tenant,
        task_id=task_id,
        function=function,
        destination=Destination.from_config(orjson.loads(destination), ()),
        status=status,
        attempts=attempts,
        next_at=float(next_at),
        created_at=float(created_at),
        delivered_at=None if delivered_at is None else float(delivered_at),
        last_error=last_error,
    )


class SqliteOutbox:
    """Outbox ops over the named statements `q`."""

    def __init__(self, q: Mapping[str, str]) -> None:
        self.q = q
        self.dead_letters = SqliteDeadLetters(q)

    def enqueue(self, conn: Connection, ended: Sequence[tuple[int, TaskStatus]], now: float) -> int:
        """Insert the deliveries owed by tasks that just ended as (row, status), in the caller's
        transaction, and list the dead letters among them; answers how many deliveries. A task
        whose function is gone owes none."""
        if not ended:
            return 0
        status_of = dict(ended)
        rows = orjson.dumps(list(status_of)).decode()
        specs: dict[tuple[str, str], FunctionSpec | None] = {}
        params: list[dict[str, Any]] = []
        dead: list[int] = []
        for source in conn.execute(self.q["outbox_sources"], {"rows": rows}).fetchall():
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
                params.append(
                    {
                        "id": new_delivery_id(),
                        "row": row,
                        "tenant": tenant,
                        "task_id": task_id,
                        "function": function,
                        "destination": json_text(destination.to_config()),
                        "now": now,
                    }
                )
        conn.executemany(self.q["insert_delivery"], params)
        self.dead_letters.record(conn, dead, now)
        return len(params)

    def claim(
        self, conn: Connection, node: str, now: float, lease_until: float, limit: int
    ) -> list[Delivery]:
        params = {"node": node, "now": now, "lease_until": lease_until, "limit": limit}
        found = conn.execute(self.q["claim_deliveries"], params).fetchall()
        return sorted(map(delivery_from_row, found), key=lambda d: (d.next_at, d.id))

    def done(self, conn: Connection, delivery_id: str, attempt: int, now: float) -> bool:
        params = {"id": delivery_id, "attempt": attempt, "now": now}
        return bool(conn.execute(self.q["delivery_done"], params).rowcount == 1)

    def failed(
        self,
        conn: Connection,
        delivery_id: str,
        attempt: int,
        error: str,
        next_at: float | None,
    ) -> bool:
        params = {"id": delivery_id, "attempt": attempt, "error": error, "next_at": next_at}
        return bool(conn.execute(self.q["delivery_failed"], params).rowcount == 1)

    def of_row(self, conn: Connection, row: int) -> tuple[Delivery, ...]:
        return tuple(map(delivery_from_row, conn.execute(self.q["task_deliveries"], {"row": row})))

    def of_task(self, conn: Connection, tenant: str, task_id: str) -> list[Delivery] | None:
        found = conn.execute(self.q["task_row"], {"tenant": tenant, "id": task_id}).fetchone()
        return None if found is None else list(self.of_row(conn, found[0]))
