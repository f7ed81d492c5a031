"""LeaseKeeper: renews the leases of the tasks this node runs, so no other node takes them over
while they live, however long they run."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from asyncfn.engine.service import Supervisor
from asyncfn.store.base import Store

log = logging.getLogger("asyncfn.engine")


class LeaseKeeper:
    name = "leases"

    def __init__(
        self,
        store: Store,
        supervisor: Supervisor,
        running_rows: Callable[[], list[int]],
        *,
        node: str,
        lease_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._supervisor = supervisor
        self._running_rows = running_rows
        self._node = node
        self._lease_s = lease_s
        self._clock = clock
        self._loop: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._loop is None:
            self._loop = self._supervisor.spawn("leases", self._run())

    async def stop(self) -> None:
        await self._supervisor.cancel(self._loop)
        self._loop = None

    async def renew(self) -> int:
        rows = self._running_rows()
        if not rows:
            return 0
        held = await self._store.renew_leases(self._node, rows, self._clock() + self._lease_s)
        if held < len(rows):
            log.warning(
                "%d of %d running tasks are no longer leased by this node",
                len(rows) - held,
                len(rows),
            )
        return held

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._lease_s / 3)
            await self.renew()
