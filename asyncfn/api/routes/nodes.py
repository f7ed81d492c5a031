"""`GET /v1/nodes`: the live nodes of the deployment with their roles and placement labels.

Node names and labels describe the deployment, not a tenant's data: any authenticated caller
may list them (a tenant needs them to see where its functions can run)."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request, Response

from asyncfn.api.deps import node_of
from asyncfn.api.render import json_response
from asyncfn.domain.placement import LIVE_WINDOW_S, NodeRecord
from asyncfn.store.base import Store

router = APIRouter(prefix="/v1/nodes", tags=["nodes"])


async def live_nodes(store: Store) -> list[NodeRecord]:
    """The nodes whose heartbeat the store saw within the live window."""
    return await store.live_nodes(time.time() - LIVE_WINDOW_S)


@router.get("")
async def list_nodes(request: Request) -> Response:
    """The live nodes (seen within the last 15 s), by name: `name`, `role` (all, api or worker;
    an api node runs no task), `labels`, `started_at`, `seen_at`."""
    nodes = await live_nodes(node_of(request).store)
    return json_response({"items": [n.to_json() for n in nodes]})
