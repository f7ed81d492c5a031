"""ClusterSignals: what other nodes' commits ask of this node, heard through the store's
`ClusterFeed` (PostgreSQL only; with a one-node store the service does nothing).

Ready wake-ups go straight to the dispatcher. Control signals for attempts running here go to
`TaskControl.apply_signal`; catalog signals reload that one function. Both are re-read from the
store after the feed reconnects and every `resync_s`, since a lost notification is never resent.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from asyncfn.domain.states import TaskStatus
from asyncfn.engine.catalog import FunctionCatalog, FunctionKey
from asyncfn.engine.control import TaskControl
from asyncfn.engine.dispatcher import Dispatcher
from asyncfn.engine.service import Supervisor, background, wait_for_event
from asyncfn.store.base import Store
from asyncfn.store.feed import ClusterFeed, ControlKind, ControlSignal, Listening

log = logging.getLogger("asyncfn.engine")

RESYNC_S = 30.0
RESYNC_BATCH = 10_000
S = TaskStatus
KIND_OF: dict[TaskStatus, ControlKind] = {
    S.STOPPING: "stop",
    S.SUSPENDED: "suspend",
    S.RUNNING: "resume",
}
"""What a live attempt's status in the store asks of the node running it, on a resync."""


class ClusterSignals:
    """A `FeedHandlers`: the listener's calls only queue work, applied in order by one loop
    (a stop, which waits for its process to exit, runs beside it)."""

    name = "cluster"

    def __init__(
        self,
        store: Store,
        catalog: FunctionCatalog,
        dispatcher: Dispatcher,
        control: TaskControl,
        supervisor: Supervisor,
        *,
        resync_s: float = RESYNC_S,
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._dispatcher = dispatcher
        self._control = control
        self._supervisor = supervisor
        self._resync_s = resync_s
        self._pending: deque[FunctionKey | ControlSignal] = deque()
        self._resync_asked = False
        self._wake = asyncio.Event()
        self._listening: Listening | None = None
        self._loop: asyncio.Task[None] | None = None
        self._stops: set[asyncio.Task[None]] = set()

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        """Listen, then resync once: the catalog loaded before this listener heard anything."""
        if self._loop is not None or not isinstance(self._store, ClusterFeed):
            return
        self._listening = await self._store.listen(self)
        self._resync_asked = True
        self._loop = self._supervisor.spawn("cluster-signals", self._run())

    async def stop(self) -> None:
        listening, self._listening = self._listening, None
        if listening is not None:
            await listening.close()
        await self._supervisor.cancel(self._loop)
        self._loop = None
        for task in list(self._stops):
            await self._supervisor.cancel(task)
        self._pending.clear()

    # -- FeedHandlers (called by the listener; queue only) ---------------------------------
    def on_ready(self, tenant: str, function: str) -> None:
        self._dispatcher.notify((tenant, function))

    def on_control(self, signal: ControlSignal) -> None:
        if signal.node == self._dispatcher.node:
            self._queue(signal)

    def on_catalog(self, tenant: str, name: str) -> None:
        self._queue((tenant, name))

    def on_resync(self) -> None:
        self._resync_asked = True
        self._wake.set()

    def _queue(self, item: FunctionKey | ControlSignal) -> None:
        self._pending.append(item)
        self._wake.set()

    # -- the loop --------------------------------------------------------------------------
    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_resync = loop.time()
        while True:
            if not self._pending and not self._resync_asked:
                await wait_for_event(self._wake, max(0.0, next_resync - loop.time()))
            self._wake.clear()
            if self._resync_asked or loop.time() >= next_resync:
                self._resync_asked = False
                next_resync = loop.time() + self._resync_s
                await self._resync()
            while self._pending:
                item = self._pending.popleft()
                if isinstance(item, ControlSignal):
                    await self._apply(item)
                else:
                    await self._catalog.reload(*item)

    async def _apply(self, signal: ControlSignal) -> None:
        """Suspend and resume apply at once (nothing in them awaits), so they keep commit
        order; a stop waits for its process to exit, so it runs beside the loop."""
        if signal.kind != "stop":
            await self._control.apply_signal(signal)
            return
        background(self._stops, self._control.apply_signal(signal), "a stop another node asked for")

    async def _resync(self) -> None:
        """Reload every function, then hand each attempt running here what the store says of
        its task (a Stopping one is stopped, a Suspended one frozen, a Running one thawed)."""
        await self._catalog.reload_all()
        node = self._dispatcher.node
        if not self._dispatcher.running_rows():
            return
        # find_lost with a `now` before any lease answers only this node's live attempts.
        for task in await self._store.find_lost(node, 0.0, RESYNC_BATCH):
            kind = KIND_OF.get(task.status)
            if kind is None or self._dispatcher.running_task(task.row) is None:
                continue
            if kind == "stop" and self._dispatcher.stop_requested(task.row):
                continue
            signal = ControlSignal(kind, task.row, task.attempt, node, task.tenant, task.function)
            await self._apply(signal)
