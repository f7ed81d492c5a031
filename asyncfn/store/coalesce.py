"""Merging many callers' submissions of one function into one write: `merged_calls` and
`split_answers` (used by SQLite's `GroupCommitter.run_merged` and by `Coalescer`), and
`Coalescer`, which does it for an async store (PostgreSQL): while a call of a key is in flight,
the calls that arrive queue up and then go as one, so N concurrent single submissions cost a
few statements and commits instead of N."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

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
    """Runs `many(key, items)` for callers of one key: a caller finding none in flight runs at
    once, alone; callers arriving while a key's call is in flight wait and then run together,
    up to `max_items` per call. `many` answers one result per item, in order. If a merged call
    raises, each of its items is run alone, so only the one at fault fails. A caller cancelled
    while waiting does not withdraw its item."""

    def __init__(
        self, many: Callable[[K, list[I]], Awaitable[list[R]]], *, max_items: int = 256
    ) -> None:
        self._many = many
        self._max_items = max_items
        self._waiting: dict[K, list[tuple[I, asyncio.Future[R]]]] = {}
        self._drains: set[asyncio.Task[None]] = set()

    async def run(self, key: K, item: I) -> R:
        waiting = self._waiting.get(key)
        if waiting is not None:  # a call of this key is in flight: go with the next one
            future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
            waiting.append((item, future))
            return await future
        self._waiting[key] = []
        try:
            (result,) = await self._many(key, [item])
            return result
        finally:
            self._drain_later(key)

    async def close(self) -> None:
        """Wait for the calls already queued."""
        while self._drains:
            await asyncio.gather(*self._drains, return_exceptions=True)

    def _drain_later(self, key: K) -> None:
        if not self._waiting.get(key):
            self._waiting.pop(key, None)
            return
        task = asyncio.get_running_loop().create_task(self._drain(key))
        self._drains.add(task)
        task.add_done_callback(self._drains.discard)

    async def _drain(self, key: K) -> None:
        """Run the key's waiting callers in calls of up to `max_items` until none is left."""
        try:
            while waiting := self._waiting.get(key):
                batch, self._waiting[key] = waiting[: self._max_items], waiting[self._max_items :]
                await self._settle(key, batch)
        finally:
            self._waiting.pop(key, None)

    async def _settle(self, key: K, batch: list[tuple[I, asyncio.Future[R]]]) -> None:
        try:
            results = await self._many(key, [item for item, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"{len(results)} results for {len(batch)} merged items")
        except Exception:
            if len(batch) == 1:
                raise
            log.debug("a merged call failed; running its %d items alone", len(batch))
            for one in batch:
                await self._settle_alone(key, one)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    async def _settle_alone(self, key: K, one: tuple[I, asyncio.Future[R]]) -> None:
        item, future = one
        try:
            (result,) = await self._many(key, [item])
        except Exception as error:
            if not future.done():
                future.set_exception(error)
            return
        if not future.done():
            future.set_result(result)
