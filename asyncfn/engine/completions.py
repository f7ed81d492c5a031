"""Completions: in-process wake-ups for callers waiting on a task to end (sync invocations), and
for listeners of every end (the deliverer).

Only a hint: a waiter that is not woken (the task ended on another node) re-reads the store.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator


class Completions:
    def __init__(self) -> None:
        self._waiters: dict[int, list[asyncio.Future[None]]] = {}
        self._listeners: list[Callable[[int], None]] = []

    def subscribe(self, listener: Callable[[int], None]) -> None:
        """Call `listener(row)` whenever a task is reported terminal."""
        self._listeners.append(listener)

    def notify(self, row: int) -> None:
        for listener in self._listeners:
            listener(row)
        for fut in self._waiters.pop(row, ()):
            if not fut.done():
                fut.set_result(None)

    @contextlib.contextmanager
    def watch(self, row: int) -> Iterator[asyncio.Future[None]]:
        """Register for the end of `row` now, before acting on it, so an end reported at any
        later moment is kept; the future is done once it is reported."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(row, []).append(fut)
        try:
            yield fut
        finally:
            fut.cancel()
            waiters = self._waiters.get(row)
            if waiters is not None:
                with contextlib.suppress(ValueError):
                    waiters.remove(fut)
                if not waiters:
                    del self._waiters[row]


async def ended_within(watched: asyncio.Future[None], within_s: float) -> bool:
    """Wait for a watched end; False when `within_s` passed first."""
    try:
        await asyncio.wait_for(asyncio.shield(watched), within_s)
    except TimeoutError:
        return False
    return True
