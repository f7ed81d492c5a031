"""The SQLite store's claim: due Enqueued tasks → Running with a new attempt, under a quota
(running caps of the function and of its tenant, the function's dispatch-rate bucket, its
concurrency keys: keys.py).

The claim is one op on the writer's connection, so it runs alone: the one writer serializes
every claim with every other write, and the counts and the bucket it reads cannot change
before it writes. Without a quota (or with an unlimited one) it reads nothing extra.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from asyncfn.domain import limits
from asyncfn.domain.flow import Claim, ClaimQuota, Preempt
from asyncfn.domain.models import ClaimedTask
from asyncfn.domain.states import TaskStatus
from asyncfn.store import quota as quotas
from asyncfn.store.sqlite.control import SqliteControl
from asyncfn.store.sqlite.keys import SqliteKeys
from asyncfn.store.sqlite.rows import claimed_from_row, json_text
from asyncfn.store.sqlite.writes import append_events

Connection = sqlite3.Connection


class SqliteFlow:
    """The claim and its quota over the named statements `q`."""

    def __init__(self, q: Mapping[str, str]) -> None:
        self.q = q
        self.keys = SqliteKeys()
        self._control = SqliteControl(q)

    def claim_ready(
        self,
        conn: Connection,
        tenant: str,
        function: str,
        node: str,
        limit: int,
        now: float,
        lease_until: float,
        created_after: float,
        quota: ClaimQuota | None,
    ) -> Claim:
        where = (tenant, function, node)
        if quota is None or quota.unlimited:
            return Claim(self._claim(conn, *where, limit, now, lease_until, created_after))
        checked = self._check(conn, tenant, function, limit, now, quota)
        tasks: list[ClaimedTask] = []
        keyed = Claim()
        if checked.allowed > 0 and quota.keys:
            keyed = self._claim_keyed(
                conn, *where, checked.allowed, now, lease_until, created_after, quota
            )
            tasks = keyed.tasks
        elif checked.allowed > 0:
            tasks = self._claim(conn, *where, checked.allowed, now, lease_until, created_after)
        bucket, retry_at = quotas.settle(checked, quota, len(tasks))
        if bucket is not None:
            params = {"tenant": tenant, "function": function, "tokens": bucket.tokens}
            conn.execute(self.q["put_flow_bucket"], {**params, "updated_at": bucket.updated_at})
        capped = checked.capped or keyed.capped
        return Claim(tasks, capped, retry_at, keyed.stopped, keyed.preempt)

    def _claim_keyed(
        self,
        conn: Connection,
        tenant: str,
        function: str,
        node: str,
        limit: int,
        now: float,
        lease_until: float,
        created_after: float,
        quota: ClaimQuota,
    ) -> Claim:
        """The claim of a function with concurrency keys (store.keyclaim plans it): the planned
        tasks run, those at a cancel_newest limit end Stopped as a user's stop of a waiting
        task ends, and the running tasks a cancel_oldest limit replaces are reported."""
        plan = self.keys.plan(conn, tenant, function, quota.keys, limit, now, created_after)
        stopped: list[int] = []
        for stop in plan.stop:
            ctl = self._control.stop(conn, tenant, stop.task.id, now, stop.detail)
            if ctl is not None and ctl.changed:
                stopped.append(ctl.row)
        order = {task.row: i for i, task in enumerate(plan.take)}
        params = {
            "rows": json_text(list(order)),
            "now": now,
            "node": node,
            "lease_until": lease_until,
        }
        rows = conn.execute(self.keys.q["claim_rows"], params).fetchall()
        claimed = [claimed_from_row(r) for r in sorted(rows, key=lambda r: order[r[0]])]
        self._record(conn, claimed, node, now)
        preempt = tuple(
            Preempt(p.task.row, p.task.id, tenant, function, p.detail) for p in plan.preempt
        )
        capped = plan.held or bool(plan.stop)
        return Claim(claimed, capped, None, tuple(stopped), preempt)

    def running_counts(self, conn: Connection) -> dict[tuple[str, str], int]:
        rows = conn.execute(self.q["running_counts"]).fetchall()
        return {(tenant, function): int(count) for tenant, function, count in rows}

    def _check(
        self,
        conn: Connection,
        tenant: str,
        function: str,
        limit: int,
        now: float,
        quota: ClaimQuota,
    ) -> quotas.QuotaCheck:
        """What `quota` allows: only the reads it needs."""
        key = {"tenant": tenant, "function": function}
        function_running = tenant_running = 0
        if quota.function_cap is not None:
            (function_running,) = conn.execute(self.q["count_running_function"], key).fetchone()
        if quota.tenant_cap is not None:
            (tenant_running,) = conn.execute(self.q["count_running_tenant"], key).fetchone()
        stored = None
        if quota.rate is not None:
            row = conn.execute(self.q["get_flow_bucket"], key).fetchone()
            stored = None if row is None else quotas.Bucket(float(row[0]), float(row[1]))
        return quotas.check(
            limit,
            quota,
            now,
            function_running=function_running,
            tenant_running=tenant_running,
            stored=stored,
        )

    def _claim(
        self,
        conn: Connection,
        tenant: str,
        function: str,
        node: str,
        limit: int,
        now: float,
        lease_until: float,
        created_after: float,
    ) -> list[ClaimedTask]:
        """Walk the priority levels down, claiming the due tasks of each, oldest first."""
        params: dict[str, Any] = {
            "tenant": tenant,
            "function": function,
            "node": node,
            "limit": limit,
            "now": now,
            "lease_until": lease_until,
            "created_after": created_after,
        }
        rows: list[Any] = []
        below = limits.PRIORITY[1] + 1
        while len(rows) < limit:
            level = {"tenant": tenant, "function": function, "below": below}
            (priority,) = conn.execute(self.q["top_priority_below"], level).fetchone()
            if priority is None:
                break
            params["priority"], params["limit"] = priority, limit - len(rows)
            found = conn.execute(self.q["claim_ready"], params).fetchall()
            rows += sorted(found, key=lambda r: (r[11], r[0]))  # run_at, row
            below = priority
        claimed = [claimed_from_row(r) for r in rows]
        self._record(conn, claimed, node, now)
        return claimed

    def _record(self, conn: Connection, claimed: list[ClaimedTask], node: str, now: float) -> None:
        """Each claimed task's Running event and attempt row."""
        events = [
            (t.row, now, TaskStatus.RUNNING, json_text({"attempt": t.attempt, "node": node}))
            for t in claimed
        ]
        append_events(conn, self.q, events)
        conn.executemany(
            self.q["insert_attempt"],
            [{"row": t.row, "number": t.attempt, "started_at": now, "node": node} for t in claimed],
        )
