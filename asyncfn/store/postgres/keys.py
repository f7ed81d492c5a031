"""The PostgreSQL store's concurrency keys: a keyed claim's reads and writes around its plan
(`store.keyclaim`), the busiest values for the stats, and a task's key columns.

A keyed claim runs in one transaction after the function's advisory lock (flow.py), so every
claimer of the function on every node counts the tasks the previous one claimed. Its cost is
bounded as SQLite's is (store/sqlite/keys.py): a skip scan of the waiting values, then one
statement for every value's candidates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from asyncfn.domain.keystats import WAITING_SCAN, KeyStats
from asyncfn.domain.models import ClaimedTask, ConcurrencyLimit, TaskKeys
from asyncfn.store import keyclaim
from asyncfn.store.keyclaim import KeyPlan
from asyncfn.store.postgres.rows import Conn, execute, fetch_all, fetch_one
from asyncfn.store.sql import load_queries
from asyncfn.store.sqlite.keys import candidates_from_rows, key_stats, running_from_row
from asyncfn.store.sqlite.rows import claimed_from_row
from asyncfn.store.taskkeys import keys_from_columns

PACKAGE = "asyncfn.store.postgres"


class PgKeys:
    """Concurrency-key statements (this package's keys.sql)."""

    def __init__(self, q: Mapping[str, str] | None = None) -> None:
        self.q = q if q is not None else load_queries(PACKAGE, "keys.sql")

    async def plan(
        self,
        conn: Conn,
        tenant: str,
        function: str,
        limits: Sequence[ConcurrencyLimit],
        allowed: int,
        now: float,
        created_after: float,
    ) -> KeyPlan:
        """Read the running tasks, the waiting values and their candidates; plan the claim and
        move the cursor to the value served last."""
        key = {"tenant": tenant, "function": function}
        found = await fetch_all(conn, self.q["running_keyed"], key)
        running = [running_from_row(r) for r in found]
        cursor_row = await fetch_one(conn, self.q["get_key_cursor"], key)
        cursor: str | None = None if cursor_row is None else cursor_row[0]
        values: list[str | None] = list(await self._values(conn, key, cursor))
        window = {**key, "now": now, "created_after": created_after}
        sizes = keyclaim.fetch_sizes(limits, [*values, None], running, allowed)
        unkeyed = sizes.pop(None, 0)
        params = {**window, "values": list(sizes), "sizes": list(sizes.values())}
        rows = list(await fetch_all(conn, self.q["key_candidates"], params))
        if unkeyed:
            more = {**window, "limit": unkeyed}
            rows += await fetch_all(conn, self.q["key_candidates_unkeyed"], more)
        candidates = candidates_from_rows(rows)
        if None in candidates:
            values.append(None)
        made = keyclaim.plan(limits, values, candidates, running, allowed)
        if made.last_served is not None and made.last_served != cursor:
            await execute(conn, self.q["put_key_cursor"], {**key, "value": made.last_served})
        return made

    async def _values(self, conn: Conn, key: dict[str, Any], cursor: str | None) -> list[str]:
        limit = keyclaim.VALUES_PER_CLAIM
        first = self.q["key_values_first"]
        if cursor is None:
            rows = await fetch_all(conn, first, {**key, "limit": limit, "upto": None})
            return [v for (v,) in rows]
        params = {**key, "limit": limit, "after": cursor}
        after = [v for (v,) in await fetch_all(conn, self.q["key_values_after"], params)]
        wrapped: list[str] = []
        if len(after) < limit:
            params = {**key, "limit": limit - len(after), "upto": cursor}
            wrapped = [v for (v,) in await fetch_all(conn, first, params)]
        return keyclaim.visit_order(after, wrapped)

    async def claim_rows(
        self, conn: Conn, rows: Sequence[int], node: str, now: float, lease_until: float
    ) -> list[ClaimedTask]:
        """The planned tasks → Running, in the plan's order."""
        if not rows:
            return []
        params = {"rows": list(rows), "node": node, "now": now, "lease_until": lease_until}
        found = await fetch_all(conn, self.q["claim_rows"], params)
        order = {row: i for i, row in enumerate(rows)}
        return [claimed_from_row(r) for r in sorted(found, key=lambda r: order[r[0]])]

    async def stats(
        self, conn: Conn, tenant: str, function: str, limits: Sequence[ConcurrencyLimit], top: int
    ) -> list[KeyStats]:
        """Per limit, its busiest values (in the caller's snapshot)."""
        key = {"tenant": tenant, "function": function}
        running = [running_from_row(r) for r in await fetch_all(conn, self.q["running_keyed"], key)]
        waiting = []
        for i in range(len(limits)):
            params = {**key, "column": i + 1, "scan": WAITING_SCAN}
            waiting.append(
                {v: int(n) for v, n in await fetch_all(conn, self.q["key_waiting"], params)}
            )
        return key_stats(limits, running, waiting, top)

    async def task_keys(self, conn: Conn, row: int) -> TaskKeys | None:
        found = await fetch_one(conn, self.q["task_keys"], {"row": row})
        return None if found is None else keys_from_columns(found)
