"""The Store contract, nodes: a heartbeat upserts a node's row (labels included), live nodes
are those seen since a cutoff, and a stopping node's row goes."""

from __future__ import annotations

import pytest

from asyncfn.domain.placement import NodeRecord
from asyncfn.store.base import Store

T0 = 1_700_000_000.0

pytestmark = pytest.mark.timeout(15)


async def test_heartbeats_upsert_and_live_nodes_are_recent(store: Store) -> None:
    gpu = NodeRecord("n-gpu", "worker", {"gpu": "1", "mem": "high"}, T0, T0)
    plain = NodeRecord("n-plain", "all", {}, T0, T0)
    await store.heartbeat_node(gpu)
    await store.heartbeat_node(plain)
    assert await store.live_nodes(T0 - 1) == [gpu, plain]  # by name

    later = NodeRecord("n-gpu", "worker", {"gpu": "2"}, T0, T0 + 20)
    await store.heartbeat_node(later)
    assert await store.live_nodes(T0 + 10) == [later]
    assert {n.name for n in await store.live_nodes(T0)} == {"n-gpu", "n-plain"}

    await store.forget_node("n-gpu")
    await store.forget_node("n-none")  # no row: nothing to do
    assert await store.live_nodes(T0) == [plain]
