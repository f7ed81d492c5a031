"""NodeHeartbeat: keeps this node's row in the store's `nodes` table fresh (its role and
placement labels), so any node's API can tell which live nodes can run a function."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping

from asyncfn.domain.placement import HEARTBEAT_S, NodeRecord
from asyncfn.engine.service import Supervisor
from asyncfn.store.base import Store

log = logging.getLogger("asyncfn.engine")


class NodeHeartbeat:
    name = "heartbeat"

    def __init__(
        self,
        store: Store,
        supervisor: Supervisor,
        *,
        node: str,
        role: str,
        labels: Mapping[str, str],
        interval_s: float = HEARTBEAT_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._supervisor = supervisor
        self._clock = clock
        self._interval_s = interval_s
        self._record = NodeRecord(node, role, dict(labels), started_at=clock())
        self._loop: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._loop is None:
            await self.beat()  # live before the first task is accepted
            self._loop = self._supervisor.spawn("heartbeat", self._run())

    async def stop(self) -> None:
        if self._loop is None:
            return
        await self._supervisor.cancel(self._loop)
        self._loop = None
        try:
            await self._store.forget_node(self._record.name)
        except Exception:  # the row ages out of the live window anyway
            log.warning(
                "could not remove node %s from the nodes table", self._record.name, exc_info=True
            )

    async def beat(self) -> None:
        """Write this node's row with `seen_at` now."""
        record = self._record
        await self._store.heartbeat_node(
            NodeRecord(record.name, record.role, record.labels, record.started_at, self._clock())
        )

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.beat()
            except Exception:  # a store hiccup: the next beat retries, well within the window
                log.warning("heartbeat of node %s failed", self._record.name, exc_info=True)
