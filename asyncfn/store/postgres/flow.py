"""The PostgreSQL store's claim under a quota: running caps of the function and of its tenant,
and the function's dispatch-rate bucket, kept across every node of the cluster.

How it stays right with many nodes claiming at once: a claim under a quota runs in one
transaction that first takes transaction-scoped advisory locks (`pg_advisory_xact_lock`, the
two-int form), then counts, reads the bucket, claims and writes the bucket back:

- a tenant cap takes the tenant's lock; a function cap, a rate or concurrency keys take the
  function's lock; always the tenant's first, so two claims never wait on each other in a
  cycle;
- each statement after the lock reads a fresh snapshot (READ COMMITTED), and a lock is released
  only once its transaction's commit is visible, so the next holder counts every task the
  previous one claimed and reads the bucket it wrote;
- what lowers a count (an attempt ending, a lease lost) needs no lock: a stale count is only
  higher, never lower. What raises it is a claim; resuming a task Suspended while running
  does not (it held its attempt, and counted, all along).

The locks serialize only claims that carry the same quota: every claimer of a function must
pass its caps and rate (the dispatcher builds them from the function and tenant configs). A
claim without a quota, or with an unlimited one, takes no lock and reads nothing extra: it is
the one-statement claim of writes.py. Lock keys are CRC-32s of the names, so two names may
share a lock now and then: that serializes them a little more, never less.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping

from asyncfn.domain.flow import Claim, ClaimQuota, Preempt
from asyncfn.domain.models import ClaimedTask
from asyncfn.store import quota as quotas
from asyncfn.store.postgres.control import PgControl
from asyncfn.store.postgres.keys import PgKeys
from asyncfn.store.postgres.rows import Conn, execute, fetch_all, fetch_one
from asyncfn.store.postgres.writes import PgWrites

TENANT_LOCKS = 0x61660001
"""The first key of a tenant's advisory lock; the second is the CRC-32 of its name."""
FUNCTION_LOCKS = 0x61660002
"""The first key of a function's advisory lock; the second is the CRC-32 of tenant/name."""
_LOCK = "SELECT pg_advisory_xact_lock(%(space)s::integer, %(key)s::integer)"


def lock_key(name: str) -> int:
    """A name's CRC-32 as the signed 32-bit integer an advisory lock key is."""
    crc = zlib.crc32(name.encode("utf-8"))
    return crc - (1 << 32) if crc >= 1 << 31 else crc


class PgFlow:
    """The claim under a quota, over the named statements `q` and the claim of `writes`."""

    def __init__(self, q: Mapping[str, str], writes: PgWrites) -> None:
        self.q = q
        self.writes = writes
        self.keys = PgKeys()
        self._control = PgControl(q, writes)

    async def claim(
        self,
        conn: Conn,
        tenant: str,
        function: str,
        node: str,
        limit: int,
        now: float,
        lease_until: float,
        created_after: float,
        quota: ClaimQuota,
    ) -> Claim:
        """Run inside a transaction (the locks last until it ends)."""
        if quota.tenant_cap is not None:
            await execute(conn, _LOCK, {"space": TENANT_LOCKS, "key": lock_key(tenant)})
        if quota.function_cap is not None or quota.rate is not None or quota.keys:
            key = lock_key(f"{tenant}/{function}")
            await execute(conn, _LOCK, {"space": FUNCTION_LOCKS, "key": key})
        checked = await self._check(conn, tenant, function, limit, now, quota)
        tasks: list[ClaimedTask] = []
        keyed = Claim()
        if checked.allowed > 0 and quota.keys:
            window = (now, lease_until, created_after)
            keyed = await self._claim_keyed(
                conn, tenant, function, node, checked.allowed, *window, quota
            )
            tasks = keyed.tasks
        elif checked.allowed > 0:
            tasks = await self.writes.claim_ready(
                conn, tenant, function, node, checked.allowed, now, lease_until, created_after
            )
        bucket, retry_at = quotas.settle(checked, quota, len(tasks))
        if bucket is not None:
            params = {"tenant": tenant, "function": function, "tokens": bucket.tokens}
            await execute(
                conn, self.q["put_flow_bucket"], {**params, "updated_at": bucket.updated_at}
            )
        capped = checked.capped or keyed.capped
        return Claim(tasks, capped, retry_at, keyed.stopped, keyed.preempt)

    async def _claim_keyed(
        self,
        conn: Conn,
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
        plan = await self.keys.plan(conn, tenant, function, quota.keys, limit, now, created_after)
        stopped: list[int] = []
        for stop in plan.stop:
            ctl = await self._control.stop(conn, tenant, stop.task.id, now, stop.detail)
            if ctl is not None and ctl.changed:
                stopped.append(ctl.row)
        rows = [task.row for task in plan.take]
        claimed = await self.keys.claim_rows(conn, rows, node, now, lease_until)
        preempt = tuple(
            Preempt(p.task.row, p.task.id, tenant, function, p.detail) for p in plan.preempt
        )
        return Claim(claimed, plan.held or bool(plan.stop), None, tuple(stopped), preempt)

    async def running_counts(self, conn: Conn) -> dict[tuple[str, str], int]:
        rows = await fetch_all(conn, self.q["running_counts"])
        return {(tenant, function): int(count) for tenant, function, count in rows}

    async def _check(
        self, conn: Conn, tenant: str, function: str, limit: int, now: float, quota: ClaimQuota
    ) -> quotas.QuotaCheck:
        """What `quota` allows: only the reads it needs."""
        key = {"tenant": tenant, "function": function}
        function_running = tenant_running = 0
        if quota.function_cap is not None:
            function_running = await self._count(conn, "count_running_function", key)
        if quota.tenant_cap is not None:
            tenant_running = await self._count(conn, "count_running_tenant", key)
        stored = None
        if quota.rate is not None:
            row = await fetch_one(conn, self.q["get_flow_bucket"], key)
            stored = None if row is None else quotas.Bucket(float(row[0]), float(row[1]))
        return quotas.check(
            limit,
            quota,
            now,
            function_running=function_running,
            tenant_running=tenant_running,
            stored=stored,
        )

    async def _count(self, conn: Conn, name: str, key: Mapping[str, str]) -> int:
        row = await fetch_one(conn, self.q[name], key)
        return 0 if row is None else int(row[0])
