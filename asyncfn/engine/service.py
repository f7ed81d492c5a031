"""The `Service` protocol every engine service follows, `Supervisor` (one dies → the node stops)
and `background` for tracked work beside a loop.

A service tolerates stop-before-start and a double stop. Long-running loops run as tasks made by
`Supervisor.spawn`, so an unexpected exception in any of them is logged and stops the node
cleanly instead of leaving it half alive.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, Protocol

log = logging.getLogger("asyncfn.engine")


async def wait_for_event(event: asyncio.Event, within_s: float) -> bool:
    """Wait until `event` is set or `within_s` passes; True when it was set.

    Not `asyncio.wait_for`: on Python 3.11 it returns the awaited result instead of raising
    when the waiting task is cancelled in the loop turn the event is set in (CPython
    gh-86296), so a service's `stop()` right after a wake-up lost its cancellation and waited
    forever. `asyncio.timeout` awaits the event in the caller's task: a cancellation always
    reaches it."""
    try:
        async with asyncio.timeout(within_s):
            await event.wait()
    except TimeoutError:
        return False
    return True


def lost_cancellation() -> None:
    """Raise CancelledError when the running task was cancelled but a library call it awaited
    returned anyway: one built on `asyncio.wait_for` loses a cancellation that lands in the loop
    turn its inner future completes in (CPython gh-86296), and a loop around such a call would
    never see the stop it was sent."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def background(
    tasks: set[asyncio.Task[None]], coro: Coroutine[Any, Any, None], what: str
) -> asyncio.Task[None]:
    """Run `coro` as a task kept in `tasks` until it ends, its failure logged as `what`, not
    lost (for work beside a service's loop: building a pool, applying another node's stop)."""
    task = asyncio.get_running_loop().create_task(coro)
    tasks.add(task)

    def done(finished: asyncio.Task[None]) -> None:
        tasks.discard(finished)
        if not finished.cancelled() and finished.exception() is not None:
            log.error("%s failed", what, exc_info=finished.exception())

    task.add_done_callback(done)
    return task


class Service(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Supervisor:
    """Owns the background loops of the engine's services; a crash in one sets `failed`."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self.failed = asyncio.Event()
        self.failure: BaseException | None = None

    def spawn(self, name: str, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("service loop %s died", task.get_name(), exc_info=exc)
            self.failure = exc
            self.failed.set()

    async def cancel(self, task: asyncio.Task[None] | None) -> None:
        """Cancel one loop and wait until it has unwound."""
        if task is None or task.done():
            return
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
