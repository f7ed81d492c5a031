"""The SQLite store's concurrency keys: a keyed claim's reads and writes around its plan
(`store.keyclaim`), the busiest values for the stats, and a task's key columns.

A keyed claim is one op on the writer's connection like any claim, so the running tasks it
counts cannot change before it writes. Its cost is bounded whatever the queue's depth: the
waiting values come from a skip scan of tasks_keys (one seek each, at most
`keyclaim.VALUES_PER_CLAIM`), then at most `keyclaim.FETCH_BUDGET` candidate rows.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from asyncfn.domain.keystats import WAITING_SCAN, KeyStats, busiest
from asyncfn.domain.models import ConcurrencyLimit, TaskKeys
from asyncfn.domain.states import TaskStatus
from asyncfn.store import keyclaim
from asyncfn.store.keyclaim import Keyed, KeyPlan, Running
from asyncfn.store.sql import load_queries
from asyncfn.store.taskkeys import keys_from_columns

Connection = sqlite3.Connection
PACKAGE = "asyncfn.store.sqlite"


class SqliteKeys:
    """Concurrency-key statements (this package's keys.sql)."""

    def __init__(self, q: Mapping[str, str] | None = None) -> None:
        self.q = q if q is not None else load_queries(PACKAGE, "keys.sql")

    def plan(
        self,
        conn: Connection,
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
        running = [running_from_row(r) for r in conn.execute(self.q["running_keyed"], key)]
        found = conn.execute(self.q["get_key_cursor"], key).fetchone()
        cursor: str | None = None if found is None else found[0]
        values: list[str | None] = list(self._values(conn, key, cursor))
        window = {**key, "now": now, "created_after": created_after}
        sizes = keyclaim.fetch_sizes(limits, [*values, None], running, allowed)
        unkeyed = sizes.pop(None, 0)
        rows: list[Any] = []
        for value, size in sizes.items():
            params = {**window, "value": value, "limit": size}
            rows += conn.execute(self.q["key_candidates"], params)
        if unkeyed:
            rows += conn.execute(self.q["key_candidates_unkeyed"], {**window, "limit": unkeyed})
        candidates = candidates_from_rows(rows)
        if None in candidates:
            values.append(None)
        made = keyclaim.plan(limits, values, candidates, running, allowed)
        if made.last_served is not None and made.last_served != cursor:
            conn.execute(self.q["put_key_cursor"], {**key, "value": made.last_served})
        return made

    def _values(self, conn: Connection, key: dict[str, Any], cursor: str | None) -> list[str]:
        limit = keyclaim.VALUES_PER_CLAIM
        if cursor is None:
            first = conn.execute(self.q["key_values_first"], {**key, "limit": limit, "upto": None})
            return [v for (v,) in first]
        after_rows = conn.execute(
            self.q["key_values_after"], {**key, "limit": limit, "after": cursor}
        )
        after = [v for (v,) in after_rows]
        wrapped: list[str] = []
        if len(after) < limit:
            params = {**key, "limit": limit - len(after), "upto": cursor}
            wrapped = [v for (v,) in conn.execute(self.q["key_values_first"], params)]
        return keyclaim.visit_order(after, wrapped)

    def stats(
        self,
        conn: Connection,
        tenant: str,
        function: str,
        limits: Sequence[ConcurrencyLimit],
        top: int,
    ) -> list[KeyStats]:
        """Per limit, its busiest values, read in one snapshot."""
        key = {"tenant": tenant, "function": function}
        conn.execute("BEGIN")
        try:
            running = [running_from_row(r) for r in conn.execute(self.q["running_keyed"], key)]
            waiting = [
                dict(
                    conn.execute(
                        self.q["key_waiting"], {**key, "column": i + 1, "scan": WAITING_SCAN}
                    )
                )
                for i in range(len(limits))
            ]
        finally:
            conn.execute("COMMIT")
        return key_stats(limits, running, waiting, top)

    def task_keys(self, conn: Connection, row: int) -> TaskKeys | None:
        found = conn.execute(self.q["task_keys"], {"row": row}).fetchone()
        return None if found is None else keys_from_columns(found)


def running_from_row(row: Sequence[Any]) -> Running:
    """From `running_keyed`'s columns (row, id, ckey1, ckey2, ckey3, started_at, status)."""
    row_id, task_id, k1, k2, k3, started_at, status = row
    return Running(
        row_id,
        task_id,
        (k1, k2, k3),
        float(started_at or 0.0),
        status == TaskStatus.STOPPING.value,
    )


def candidates_from_rows(rows: Sequence[Sequence[Any]]) -> dict[str | None, list[Keyed]]:
    """From `key_candidates`' columns (ckey1, row, id, ckey2, ckey3, priority, run_at): per
    value of the first key, its tasks in dispatch order (priority desc, run_at, row)."""
    ordered = sorted(rows, key=lambda r: (-r[5], r[6], r[1]))
    out: dict[str | None, list[Keyed]] = {}
    for k1, row_id, task_id, k2, k3, _, _ in ordered:
        out.setdefault(k1, []).append(Keyed(row_id, task_id, (k1, k2, k3)))
    return out


def key_stats(
    limits: Sequence[ConcurrencyLimit],
    running: Sequence[Running],
    waiting: Sequence[Mapping[str, int]],
    top: int,
) -> list[KeyStats]:
    """Per limit, its busiest values from the running tasks and the waiting counts per value
    (`key_waiting`, one mapping per limit), in either store."""
    out: list[KeyStats] = []
    for i, limit in enumerate(limits):
        counts = Counter(r.keys[i] for r in running)
        running_of = {k: n for k, n in counts.items() if k is not None}
        waiting_of = {str(k): int(n) for k, n in waiting[i].items()}
        out.append(KeyStats(limit, busiest(running_of, waiting_of, top)))
    return out
