"""The SQLite store's triggers: their rows and reads, and a function's queue depth (what a
trigger's back-pressure asks)."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Mapping
from functools import partial
from typing import Any

from asyncfn.domain.triggers import Trigger
from asyncfn.store.sqlite.plumbing import SqlitePlumbing

Connection = sqlite3.Connection


def trigger_from_row(row: tuple[Any, ...]) -> Trigger:
    """From the 9 columns `get_trigger` selects."""
    tenant, name, function, type_, settings, enabled, depth, created_at, updated_at = row
    return Trigger(
        name=name,
        function=function,
        type=type_,
        tenant=tenant,
        settings=json.loads(settings),
        enabled=bool(enabled),
        max_queue_depth=int(depth),
        created_at=float(created_at),
        updated_at=float(updated_at),
    )


class SqliteTriggers:
    """Trigger ops and reads over the named statements `q`."""

    def __init__(self, q: Mapping[str, str]) -> None:
        self.q = q

    # -- writes (on the writer's connection) -----------------------------------------------
    def put(self, conn: Connection, trigger: Trigger, now: float) -> bool:
        key = {"tenant": trigger.tenant, "name": trigger.name}
        created = conn.execute(self.q["trigger_exists"], key).fetchone() is None
        conn.execute(
            self.q["upsert_trigger"],
            {
                **key,
                "function": trigger.function,
                "type": trigger.type,
                "settings": json.dumps(dict(trigger.settings), sort_keys=True),
                "enabled": int(trigger.enabled),
                "max_queue_depth": trigger.max_queue_depth,
                "now": now,
            },
        )
        return created

    def delete(self, conn: Connection, tenant: str, name: str) -> bool:
        key = {"tenant": tenant, "name": name}
        return conn.execute(self.q["delete_trigger"], key).fetchone() is not None

    # -- reads (on a reader's connection) --------------------------------------------------
    def get(self, conn: Connection, tenant: str, name: str) -> Trigger | None:
        row = conn.execute(self.q["get_trigger"], {"tenant": tenant, "name": name}).fetchone()
        return None if row is None else trigger_from_row(row)

    def listed(self, conn: Connection, tenant: str | None) -> list[Trigger]:
        if tenant is None:
            rows = conn.execute(self.q["all_triggers"]).fetchall()
        else:
            rows = conn.execute(self.q["list_triggers"], {"tenant": tenant}).fetchall()
        return [trigger_from_row(r) for r in rows]

    def queue_depth(self, conn: Connection, tenant: str, function: str) -> int:
        params = {"tenant": tenant, "function": function}
        (count,) = conn.execute(self.q["queue_depth"], params).fetchone()
        return int(count)


class SqliteTriggerStore(SqlitePlumbing):
    """`SqliteStore`'s trigger methods (the Store protocol's), kept here so the store's
    module does not grow; they run on its writer and readers like the rest."""

    _triggers: SqliteTriggers

    async def put_trigger(self, trigger: Trigger) -> bool:
        now = trigger.updated_at or time.time()
        return await self._write(partial(self._triggers.put, trigger=trigger, now=now))

    async def get_trigger(self, tenant: str, name: str) -> Trigger | None:
        return await self._read(partial(self._triggers.get, tenant=tenant, name=name))

    async def list_triggers(self, tenant: str | None = None) -> list[Trigger]:
        return await self._read(partial(self._triggers.listed, tenant=tenant))

    async def delete_trigger(self, tenant: str, name: str) -> bool:
        return await self._write(partial(self._triggers.delete, tenant=tenant, name=name))

    async def queue_depth(self, tenant: str, function: str) -> int:
        op = partial(self._triggers.queue_depth, tenant=tenant, function=function)
        return await self._read(op)
