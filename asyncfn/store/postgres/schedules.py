"""The PostgreSQL store's schedules: their writes and reads, and firing a tick.

Firing is one transaction: the guarded bookkeeping update locks the schedule row, then the tick's
task goes in as `PgWrites.submit_many` inserts a client-given id (with its wake-up), so two
runners firing one tick make one task.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from asyncfn.domain.models import Submission, Submitted
from asyncfn.domain.schedules import Schedule
from asyncfn.store.postgres.plumbing import PgPlumbing
from asyncfn.store.postgres.rows import Conn, execute, fetch_all, fetch_one, schedule_from_row
from asyncfn.store.postgres.writes import PgWrites


class PgSchedules:
    """Schedule ops and reads over the named statements `q`; tasks go through `writes`."""

    def __init__(self, q: Mapping[str, str], writes: PgWrites) -> None:
        self.q = q
        self._writes = writes

    async def put(self, conn: Conn, schedule: Schedule, now: float) -> bool:
        params = {
            "tenant": schedule.tenant,
            "name": schedule.name,
            "function": schedule.function,
            "cron": schedule.cron,
            "every_s": schedule.every_s,
            "timezone": schedule.timezone,
            "payload": schedule.payload,
            "enabled": schedule.enabled,
            "catch_up": schedule.catch_up,
            "next_fire_at": schedule.next_fire_at,
            "now": now,
        }
        row = await fetch_one(conn, self.q["upsert_schedule"], params)
        return bool(row and row[0])

    async def delete(self, conn: Conn, tenant: str, name: str) -> bool:
        key = {"tenant": tenant, "name": name}
        return await fetch_one(conn, self.q["delete_schedule"], key) is not None

    async def fire(
        self,
        conn: Conn,
        tenant: str,
        name: str,
        tick: float,
        next_fire_at: float,
        submission: Submission,
        now: float,
        max_attempts: int,
        default_priority: int,
    ) -> Submitted | None:
        """In a transaction (see the module docstring)."""
        params = {"tenant": tenant, "name": name, "tick": tick, "next_fire_at": next_fire_at}
        found = await fetch_one(conn, self.q["fire_schedule"], params)
        if found is None:
            return None
        (function,) = found
        (answer,) = await self._writes.submit_many(
            conn, tenant, function, [submission], now, max_attempts, default_priority
        )
        return answer

    async def skip(self, conn: Conn, tenant: str, name: str, next_fire_at: float) -> bool:
        params = {"tenant": tenant, "name": name, "next_fire_at": next_fire_at}
        return await execute(conn, self.q["skip_schedule"], params) == 1

    async def get(self, conn: Conn, tenant: str, name: str) -> Schedule | None:
        row = await fetch_one(conn, self.q["get_schedule"], {"tenant": tenant, "name": name})
        return None if row is None else schedule_from_row(row)

    async def of_tenant(self, conn: Conn, tenant: str) -> list[Schedule]:
        rows = await fetch_all(conn, self.q["list_schedules"], {"tenant": tenant})
        return [schedule_from_row(r) for r in rows]

    async def due(self, conn: Conn, now: float, limit: int) -> list[Schedule]:
        rows = await fetch_all(conn, self.q["due_schedules"], {"now": now, "limit": limit})
        return [schedule_from_row(r) for r in rows]

    async def next_at(self, conn: Conn) -> float | None:
        row = await fetch_one(conn, self.q["next_schedule_at"])
        return None if row is None or row[0] is None else float(row[0])


class PgScheduleStore(PgPlumbing):
    """`PostgresStore`'s schedule methods (the Store protocol's), kept here so the
    store's module does not grow."""

    _schedules: PgSchedules

    async def put_schedule(self, schedule: Schedule) -> bool:
        now = schedule.updated_at or time.time()
        return await self._run(lambda c: self._schedules.put(c, schedule, now))

    async def get_schedule(self, tenant: str, name: str) -> Schedule | None:
        return await self._run(lambda c: self._schedules.get(c, tenant, name))

    async def list_schedules(self, tenant: str) -> list[Schedule]:
        return await self._run(lambda c: self._schedules.of_tenant(c, tenant))

    async def delete_schedule(self, tenant: str, name: str) -> bool:
        return await self._run(lambda c: self._schedules.delete(c, tenant, name))

    async def due_schedules(self, now: float, limit: int) -> list[Schedule]:
        return await self._run(lambda c: self._schedules.due(c, now, limit))

    async def next_schedule_at(self) -> float | None:
        return await self._run(self._schedules.next_at)

    async def fire_schedule(
        self,
        tenant: str,
        name: str,
        tick: float,
        next_fire_at: float,
        submission: Submission,
        now: float,
        max_attempts: int,
        default_priority: int,
    ) -> Submitted | None:
        return await self._run(
            lambda c: self._schedules.fire(
                c,
                tenant,
                name,
                tick,
                next_fire_at,
                submission,
                now,
                max_attempts,
                default_priority,
            ),
            True,
        )

    async def skip_schedule(self, tenant: str, name: str, next_fire_at: float) -> bool:
        return await self._run(lambda c: self._schedules.skip(c, tenant, name, next_fire_at))
