"""Trigger source fixtures: `RecordingSink` commits into a dict keyed by message id (a second
commit of an id is a duplicate, as in the store), can refuse or fail after committing (a crash
between commit and acknowledgement), and `run_source` runs a source and stops it."""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from asyncfn.engine.triggers.base import Message, Sink, Source

STOP_WITHIN_S = 10.0


class SinkCrash(Exception):
    """What a sink that 'crashes after commit' raises."""


@dataclass
class RecordingSink(Sink):
    """Commits into `committed` (id → payload); counts each id's commits in `seen`."""

    committed: dict[str, bytes] = field(default_factory=dict)
    seen: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    batches: list[int] = field(default_factory=list)
    lags: list[int | None] = field(default_factory=list)
    crash_after_commit: int = 0
    """This many next commits raise SinkCrash after committing (the task is durable, the
    source must not acknowledge)."""
    full: bool = False
    """While True `room()` blocks (the function's queue is full)."""
    room_waits: int = 0

    async def room(self) -> None:
        if self.full:
            self.room_waits += 1
        while True:
            if not self.full:
                return
            await asyncio.sleep(0.01)

    async def commit(self, messages: Sequence[Message]) -> None:
        self.batches.append(len(messages))
        for m in messages:
            self.seen[m.id] = self.seen.get(m.id, 0) + 1
            if m.id in self.committed:
                self.duplicates += 1
            else:
                self.committed[m.id] = m.payload
        if self.crash_after_commit > 0:
            self.crash_after_commit -= 1
            raise SinkCrash("crashed between commit and acknowledgement")

    def report_lag(self, pending: int | None) -> None:
        self.lags.append(pending)

    async def wait_for(self, count: int, within_s: float = 15.0) -> None:
        """Until `count` distinct messages are committed; AssertionError after `within_s`."""
        deadline = time.monotonic() + within_s
        while True:
            if len(self.committed) >= count:
                return
            assert time.monotonic() < deadline, f"{len(self.committed)} of {count} committed"
            await asyncio.sleep(0.01)

    async def wait_until(self, check: Callable[[], bool], within_s: float = 15.0) -> None:
        deadline = time.monotonic() + within_s
        while True:
            if check():
                return
            assert time.monotonic() < deadline, "condition never held"
            await asyncio.sleep(0.01)


@asynccontextmanager
async def run_source(source: Source, sink: Sink) -> AsyncIterator[asyncio.Task[None]]:
    """Run `source.run(sink)` as a task for the block; cancel it and wait at the end. The task is
    yielded so a test can see whether the source died (and with what)."""
    task = asyncio.get_running_loop().create_task(source.run(sink))
    try:
        yield task
    finally:
        task.cancel()
        finished, _ = await asyncio.wait({task}, timeout=STOP_WITHIN_S)
        if not finished:  # fail fast, saying where it waits, rather than at the suite's timeout
            where = "".join(traceback.format_stack(f)[-1] for f in task.get_stack())
            raise AssertionError(f"the source did not stop within {STOP_WITHIN_S} s:\n{where}")
