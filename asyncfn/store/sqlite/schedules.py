"""The SQLite store's schedules: their rows, reads, and the ops that fire or skip a tick.

Firing a tick is one op on the writer's connection, so one transaction: the schedule's
bookkeeping and the task, inserted by `SqliteSubmits.submit_many` like any client-given id.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping
from functools import partial
from typing import Any

from asyncfn.domain.models import Submission, Submitted
from asyncfn.domain.schedules import Schedule
from asyncfn.store.sqlite.plumbing import SqlitePlumbing
from asyncfn.store.sqlite.submit import SqliteSubmits

Connection = sqlite3.Connection


def schedule_from_row(row: tuple[Any, ...]) -> Schedule:
    """From the 13 columns `get_schedule` selects."""
    (
        tenant,
        name,
        function,
        cron,
        every_s,
        timezone,
        payload,
        enabled,
        catch_up,
        last_fire_at,
        next_fire_at,
        created_at,
        updated_at,
    ) = row
    return Schedule(
        name=name,
        function=function,
        tenant=tenant,
        cron=cron,
        every_s=every_s,
        timezone=timezone,
        payload=bytes(payload),
        enabled=bool(enabled),
        catch_up=catch_up,
        last_fire_at=None if last_fire_at is None else float(last_fire_at),
        next_fire_at=None if next_fire_at is None else float(next_fire_at),
        created_at=float(created_at),
        updated_at=float(updated_at),
    )


class SqliteSchedules:
    """Schedule ops and reads over the named statements `q`; tasks go through `writes`."""

    def __init__(self, q: Mapping[str, str], submits: SqliteSubmits) -> None:
        self.q = q
        self._submits = submits

    # -- writes (on the writer's connection) -----------------------------------------------
    def put(self, conn: Connection, schedule: Schedule, now: float) -> bool:
        key = {"tenant": schedule.tenant, "name": schedule.name}
        created = conn.execute(self.q["schedule_exists"], key).fetchone() is None
        conn.execute(
            self.q["upsert_schedule"],
            {
                **key,
                "function": schedule.function,
                "cron": schedule.cron,
                "every_s": schedule.every_s,
                "timezone": schedule.timezone,
                "payload": schedule.payload,
                "enabled": int(schedule.enabled),
                "catch_up": schedule.catch_up,
                "next_fire_at": schedule.next_fire_at,
                "now": now,
            },
        )
        return created

    def delete(self, conn: Connection, tenant: str, name: str) -> bool:
        key = {"tenant": tenant, "name": name}
        return conn.execute(self.q["delete_schedule"], key).fetchone() is not None

    def fire(
        self,
        conn: Connection,
        tenant: str,
        name: str,
        tick: float,
        next_fire_at: float,
        submission: Submission,
        now: float,
        max_attempts: int,
        default_priority: int,
    ) -> Submitted | None:
        params = {"tenant": tenant, "name": name, "tick": tick, "next_fire_at": next_fire_at}
        found = conn.execute(self.q["fire_schedule"], params).fetchone()
        if found is None:
            return None
        (function,) = found
        (answer,) = self._submits.submit_many(
            conn, tenant, function, [submission], now, max_attempts, default_priority
        )
        return answer

    def skip(self, conn: Connection, tenant: str, name: str, next_fire_at: float) -> bool:
        params = {"tenant": tenant, "name": name, "next_fire_at": next_fire_at}
        return bool(conn.execute(self.q["skip_schedule"], params).rowcount == 1)

    # -- reads (on a reader's connection) --------------------------------------------------
    def get(self, conn: Connection, tenant: str, name: str) -> Schedule | None:
        row = conn.execute(self.q["get_schedule"], {"tenant": tenant, "name": name}).fetchone()
        return None if row is None else schedule_from_row(row)

    def of_tenant(self, conn: Connection, tenant: str) -> list[Schedule]:
        rows = conn.execute(self.q["list_schedules"], {"tenant": tenant}).fetchall()
        return [schedule_from_row(r) for r in rows]

    def due(self, conn: Connection, now: float, limit: int) -> list[Schedule]:
        rows = conn.execute(self.q["due_schedules"], {"now": now, "limit": limit}).fetchall()
        return [schedule_from_row(r) for r in rows]

    def next_at(self, conn: Connection) -> float | None:
        (at,) = conn.execute(self.q["next_schedule_at"]).fetchone()
        return None if at is None else float(at)


class SqliteScheduleStore(SqlitePlumbing):
    """`SqliteStore`'s schedule methods (the Store protocol's), kept here so the store's
    module does not grow; they run on its writer and readers like the rest."""

    _schedules: SqliteSchedules

    async def put_schedule(self, schedule: Schedule) -> bool:
        now = schedule.updated_at or time.time()
        return await self._write(partial(self._schedules.put, schedule=schedule, now=now))

    async def get_schedule(self, tenant: str, name: str) -> Schedule | None:
        return await self._read(partial(self._schedules.get, tenant=tenant, name=name))

    async def list_schedules(self, tenant: str) -> list[Schedule]:
        return await self._read(partial(self._schedules.of_tenant, tenant=tenant))

    async def delete_schedule(self, tenant: str, name: str) -> bool:
        return await self._write(partial(self._schedules.delete, tenant=tenant, name=name))

    async def due_schedules(self, now: float, limit: int) -> list[Schedule]:
        return await self._read(partial(self._schedules.due, now=now, limit=limit))

    async def next_schedule_at(self) -> float | None:
        return await self._read(self._schedules.next_at)

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
        op = partial(
            self._schedules.fire,
            tenant=tenant,
            name=name,
            tick=tick,
            next_fire_at=next_fire_at,
            submission=submission,
            now=now,
            max_attempts=max_attempts,
            default_priority=default_priority,
        )
        return await self._write(op)

    async def skip_schedule(self, tenant: str, name: str, next_fire_at: float) -> bool:
        op = partial(self._schedules.skip, tenant=tenant, name=name, next_fire_at=next_fire_at)
        return await self._write(op)
