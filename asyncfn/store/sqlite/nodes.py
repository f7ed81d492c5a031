"""The SQLite store's `nodes` table: each node's heartbeat row and the live nodes' labels."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from functools import partial
from typing import Any

import orjson

from asyncfn.domain.placement import NodeRecord
from asyncfn.store.sqlite.plumbing import SqlitePlumbing


def node_params(node: NodeRecord) -> dict[str, Any]:
    """The named parameters of `node_heartbeat` (labels as a JSON object)."""
    return {
        "name": node.name,
        "role": node.role,
        "labels": orjson.dumps(node.labels).decode(),
        "started_at": node.started_at,
        "seen_at": node.seen_at,
    }


def node_from_row(row: tuple[Any, ...]) -> NodeRecord:
    """From the 5 columns `live_nodes` selects."""
    name, role, labels, started_at, seen_at = row
    return NodeRecord(
        name=name,
        role=role,
        labels=dict(orjson.loads(labels or "{}")),
        started_at=float(started_at),
        seen_at=float(seen_at),
    )


class SqliteNodes:
    def __init__(self, q: Mapping[str, str]) -> None:
        self.q = q

    def heartbeat(self, conn: sqlite3.Connection, node: NodeRecord) -> None:
        conn.execute(self.q["node_heartbeat"], node_params(node))

    def forget(self, conn: sqlite3.Connection, name: str) -> None:
        conn.execute(self.q["forget_node"], {"name": name})

    def live(self, conn: sqlite3.Connection, since: float) -> list[NodeRecord]:
        rows = conn.execute(self.q["live_nodes"], {"since": since}).fetchall()
        return [node_from_row(r) for r in rows]


class SqliteNodeStore(SqlitePlumbing):
    """`SqliteStore`'s node methods (the Store protocol's), kept here so the store's
    module does not grow; they run on its writer and readers like the rest."""

    _nodes: SqliteNodes

    async def heartbeat_node(self, node: NodeRecord) -> None:
        await self._write(partial(self._nodes.heartbeat, node=node))

    async def forget_node(self, name: str) -> None:
        await self._write(partial(self._nodes.forget, name=name))

    async def live_nodes(self, since: float) -> list[NodeRecord]:
        return await self._read(partial(self._nodes.live, since=since))
