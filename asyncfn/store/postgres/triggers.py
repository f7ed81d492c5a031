"""The PostgreSQL store's triggers: their writes and reads, and a function's queue depth (what
a trigger's back-pressure asks)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping

from asyncfn.domain.triggers import Trigger
from asyncfn.store.postgres.plumbing import PgPlumbing
from asyncfn.store.postgres.rows import Conn, fetch_all, fetch_one, trigger_from_row


class PgTriggers:
    """Trigger ops and reads over the named statements `q`."""

    def __init__(self, q: Mapping[str, str]) -> None:
        self.q = q

    async def put(self, conn: Conn, trigger: Trigger, now: float) -> bool:
        params = {
            "tenant": trigger.tenant,
            "name": trigger.name,
            "function": trigger.function,
            "type": trigger.type,
            "settings": json.dumps(dict(trigger.settings), sort_keys=True),
            "enabled": trigger.enabled,
            "max_queue_depth": trigger.max_queue_depth,
            "now": now,
        }
        row = await fetch_one(conn, self.q["upsert_trigger"], params)
        return bool(row and row[0])

    async def delete(self, conn: Conn, tenant: str, name: str) -> bool:
        key = {"tenant": tenant, "name": name}
        return await fetch_one(conn, self.q["delete_trigger"], key) is not None

    async def get(self, conn: Conn, tenant: str, name: str) -> Trigger | None:
        row = await fetch_one(conn, self.q["get_trigger"], {"tenant": tenant, "name": name})
        return None if row is None else trigger_from_row(row)

    async def listed(self, conn: Conn, tenant: str | None) -> list[Trigger]:
        if tenant is None:
            rows = await fetch_all(conn, self.q["all_triggers"])
        else:
            rows = await fetch_all(conn, self.q["list_triggers"], {"tenant": tenant})
        return [trigger_from_row(r) for r in rows]

    async def queue_depth(self, conn: Conn, tenant: str, function: str) -> int:
        row = await fetch_one(conn, self.q["queue_depth"], {"tenant": tenant, "function": function})
        return 0 if row is None else int(row[0])


class PgTriggerStore(PgPlumbing):
    """`PostgresStore`'s trigger methods (the Store protocol's), kept here so the
    store's module does not grow."""

    _triggers: PgTriggers

    async def put_trigger(self, trigger: Trigger) -> bool:
        now = trigger.updated_at or time.time()
        return await self._run(lambda c: self._triggers.put(c, trigger, now))

    async def get_trigger(self, tenant: str, name: str) -> Trigger | None:
        return await self._run(lambda c: self._triggers.get(c, tenant, name))

    async def list_triggers(self, tenant: str | None = None) -> list[Trigger]:
        return await self._run(lambda c: self._triggers.listed(c, tenant))

    async def delete_trigger(self, tenant: str, name: str) -> bool:
        return await self._run(lambda c: self._triggers.delete(c, tenant, name))

    async def queue_depth(self, tenant: str, function: str) -> int:
        return await self._run(lambda c: self._triggers.queue_depth(c, tenant, function))
