"""Merging many callers' submissions of one function into one write: `merged_calls` and
`split_answers` (used by SQLite's `GroupCommitter.run_merged` and by `Coalescer`), and
`Coalescer`, which does it for an async store (PostgreSQL): while a call of a key is in flight,
the calls that arrive queue up and then go as one, so N concurrent single submissions cost a
few statements and commits instead of N."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar, cast

from asyncfn.domain.models import Submission, Submitted

K = TypeVar("K", bound=Hashable)
I = TypeVar("I")  # noqa: E741
R = TypeVar("R")

Call = tuple[float, Sequence[Submission]]
"""One caller's `submit_many`: its clock and its submissions."""

log = logging.getLogger(__name__)


def merged_calls(calls: Sequence[Call]) -> tuple[float, list[Submission]]:
    """The one `submit_many` of several callers: the latest caller's clock (the others' precede
    it by at most the wait to be merged) and every submission, in the callers' order."""
    return max(at for at, _ in calls), [s for _, submissions in calls for s in submissions]


def split_answers(calls: Sequence[Call], answers: Sequence[Submitted]) -> list[list[Submitted]]:
    """`answers` of the merged call, back to each caller in `calls`' order."""
    split: list[list[Submitted]] = []
    start = 0
    for _, submissions in calls:
        split.append(list(answers[start : start + len(submissions)]))
        start += len(submissions)
    return split


class Coalescer(Generic[K, I, R]):
    """Runs `many(key, items)` for callers of one key, at most `in_flight` calls at a time: a
    caller finding room runs at once, alone; callers arriving while the key's calls are all in
    flight wait, then go together, up to `max_items` per call, as soon as one of those calls
    ends. `many` answers one result per item, in order. If a merged call raises, each of its
    items is run alone, so only the one at fault fails. A caller cancelled while waiting does
    not withdraw its item."""

    def __init__(
        self,
        many: Callable[[K, list[I]], Awaitable[list[R]]],
        *,
        in_flight: int = 2,
        max_items: int = 256,
    ) -> None:
        if in_flight < 1 or max_items < 1:
            raise ValueError("in_flight and max_items must be at least 1")
        self._many = many
        self._in_flight = in_flight
        self._max_items = max_items
        self._running: dict[K, int] = {}
        self._waiting: dict[K, list[tuple[I, asyncio.Future[R]]]] = {}
        self._drains: set[asyncio.Task[None]] = set()

    async def run(self, key: K, item: I) -> R:
        if self._running.get(key, 0) >= self._in_flight:
            future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
            self._waiting.setdefault(key, []).append((item, future))
            return await future
        self._running[key] = self._running.get(key, 0) + 1
        try:
            (result,) = await self._many(key, [item])
            return result
        finally:
            self._ended(key)

    async def close(self) -> None:
        """Wait for the calls already queued."""
        while self._drains:
            await asyncio.gather(*self._drains, return_exceptions=True)

    def _ended(self, key: K) -> None:
        """One of the key's calls ended: its room goes to the callers waiting, as one call."""
        self._running[key] -= 1
        waiting = self._waiting.get(key)
        if waiting:
            batch, rest = waiting[: self._max_items], waiting[self._max_items :]
            if rest:
                self._waiting[key] = rest
            else:
                del self._waiting[key]
            self._running[key] += 1
            task = asyncio.get_running_loop().create_task(self._drain(key, batch))
            self._drains.add(task)
            task.add_done_callback(self._drains.discard)
        elif not self._running[key]:
            del self._running[key]

    async def _drain(self, key: K, batch: list[tuple[I, asyncio.Future[R]]]) -> None:
        try:
            await self._settle(key, batch)
        except BaseException as error:  # cancelled (the loop is closing): nobody waits forever
            for _, future in batch:
                _settle_future(future, None, error)
            raise
        finally:
            self._ended(key)

    async def _settle(self, key: K, batch: list[tuple[I, asyncio.Future[R]]]) -> None:
        try:
            results = await self._many(key, [item for item, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"{len(results)} results for {len(batch)} merged items")
        except Exception as error:
            if len(batch) == 1:
                _settle_future(batch[0][1], None, error)
                return
            log.debug("a merged call failed; running its %d items alone", len(batch))
            for one in batch:
                await self._settle(key, [one])
            return
        for (_, future), result in zip(batch, results, strict=True):
            _settle_future(future, result, None)


def _settle_future(
    future: asyncio.Future[R], result: R | None, error: BaseException | None
) -> None:
    if future.done():  # its caller was cancelled
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(cast(R, result))
