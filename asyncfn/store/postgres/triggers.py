"""The PostgreSQL store's triggers: their writes and reads, and a function's queue depth (what
a trigger's back-pressure asks)."""

from __future__ import annotations

import json
from collections.abc import Mapping

from asyncfn.domain.triggers import Trigger
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
