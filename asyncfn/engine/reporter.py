"""AttemptReporter: what running attempts report besides their outcome (log lines, progress,
checkpoints), written to the store in batches off the instance's path.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from asyncfn.engine.service import Supervisor, wait_for_event
from asyncfn.store.base import NewLogLine, Store

log = logging.getLogger("asyncfn.engine")

TRUNCATED = "[asyncfn: log truncated: the task wrote more than {limit} bytes]"


class AttemptReporter:
    """The runtime's listener: buffers log lines (flushed every `flush_s`) and saves progress
    and checkpoints. Caps each task's log at `max_bytes` with one visible marker line."""

    name = "reporter"

    def __init__(
        self, store: Store, supervisor: Supervisor, *, max_bytes: int, flush_s: float = 0.05
    ) -> None:
        self._store = store
        self._supervisor = supervisor
        self._max_bytes = max_bytes
        self._flush_s = flush_s
        self._buffer: list[NewLogLine] = []
        self._bytes: dict[int, int] = {}
        self._kick = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        self._writes: set[asyncio.Task[Any]] = set()
        self._started: dict[tuple[int, int], float] = {}

    async def start(self) -> None:
        if self._loop is None:
            self._loop = self._supervisor.spawn("reporter", self._run())

    async def stop(self) -> None:
        await self._supervisor.cancel(self._loop)
        self._loop = None
        await self.flush()
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)

    # -- RuntimeListener -------------------------------------------------------------------
    def on_started(self, row: int, attempt: int, instance_id: str, at: float) -> None:
        self._started[(row, attempt)] = at

    def on_log(self, row: int, attempt: int, stream: str, line: str, at: float) -> None:
        used = self._bytes.get(row, 0)
        if used > self._max_bytes:
            return
        used += len(line) + 1
        self._bytes[row] = used
        if used > self._max_bytes:
            line, stream = TRUNCATED.format(limit=self._max_bytes), "system"
        self._buffer.append(NewLogLine(row, at, stream, line))
        if len(self._buffer) >= 2_000:
            self._kick.set()

    def on_progress(self, row: int, attempt: int, fraction: float, message: str | None) -> None:
        self._write(self._store.save_progress(row, attempt, fraction, message))

    def on_checkpoint(self, row: int, attempt: int, checkpoint: Any) -> None:
        self._write(self._store.save_checkpoint(row, attempt, checkpoint))

    # -- engine side -----------------------------------------------------------------------
    def system_line(self, row: int, line: str) -> None:
        """A line the platform itself adds to a task's log (stop requests, retries…)."""
        self._buffer.append(NewLogLine(row, time.time(), "system", line))

    async def flush(self) -> None:
        """Write every buffered line; called before a task's outcome is committed."""
        if not self._buffer:
            return
        lines, self._buffer = self._buffer, []
        await self._store.append_logs(lines)

    def forget(self, row: int) -> None:
        self._bytes.pop(row, None)

    def take_started(self, row: int, attempt: int) -> float | None:
        """When an instance began `attempt` of `row` (None if it never did); forgets it."""
        return self._started.pop((row, attempt), None)

    def _write(self, coro: Any) -> None:
        task: asyncio.Task[Any] = asyncio.get_running_loop().create_task(coro)
        self._writes.add(task)
        task.add_done_callback(self._written)

    def _written(self, task: asyncio.Task[Any]) -> None:
        self._writes.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("saving progress or checkpoint failed", exc_info=task.exception())

    async def _run(self) -> None:
        while True:
            await wait_for_event(self._kick, self._flush_s)
            self._kick.clear()
            await self.flush()
