"""The store's node rows (placement)."""

from __future__ import annotations

from typing import Protocol

from asyncfn.domain.placement import NodeRecord


class NodeStore(Protocol):
    """Nodes: every node upserts its row every few seconds (domain.placement says why)."""

    async def heartbeat_node(self, node: NodeRecord) -> None:
        """Insert or refresh `node`'s row (its labels, role and `seen_at`)."""

    async def forget_node(self, name: str) -> None:
        """Remove `name`'s row: the node stops (it no longer counts as live)."""

    async def live_nodes(self, since: float) -> list[NodeRecord]:
        """The nodes seen at or after `since`, by name."""
