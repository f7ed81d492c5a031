"""The PostgreSQL store's `nodes` table: each node's heartbeat row and the live nodes' labels."""

from __future__ import annotations

from collections.abc import Mapping

from asyncfn.domain.placement import NodeRecord
from asyncfn.store.postgres.plumbing import PgPlumbing
from asyncfn.store.postgres.rows import Conn, execute, fetch_all
from asyncfn.store.sqlite.nodes import node_from_row, node_params


class PgNodes:
    def __init__(self, q: Mapping[str, str]) -> None:
        self.q = q

    async def heartbeat(self, conn: Conn, node: NodeRecord) -> None:
        await execute(conn, self.q["node_heartbeat"], node_params(node))

    async def forget(self, conn: Conn, name: str) -> None:
        await execute(conn, self.q["forget_node"], {"name": name})

    async def live(self, conn: Conn, since: float) -> list[NodeRecord]:
        rows = await fetch_all(conn, self.q["live_nodes"], {"since": since})
        return [node_from_row(r) for r in rows]


class PgNodeStore(PgPlumbing):
    """`PostgresStore`'s node methods (the Store protocol's), kept here so the
    store's module does not grow."""

    _nodes: PgNodes

    async def heartbeat_node(self, node: NodeRecord) -> None:
        await self._run(lambda c: self._nodes.heartbeat(c, node))

    async def forget_node(self, name: str) -> None:
        await self._run(lambda c: self._nodes.forget(c, name))

    async def live_nodes(self, since: float) -> list[NodeRecord]:
        return await self._run(lambda c: self._nodes.live(c, since))
