"""GroupCommitter: many callers' writes in one SQLite transaction, each answered at its commit.

One writer thread owns one connection. Callers `await committer.run(op)`; the thread takes
everything queued (up to `max_batch` ops), runs `BEGIN IMMEDIATE`, runs each op inside its own
`SAVEPOINT` (an op that raises is rolled back alone and its caller gets the exception), then
`COMMIT`s once, so one fsync answers the whole batch, and resolves the waiting futures with one
`call_soon_threadsafe` per event loop. `inline=True` gives each op its own transaction: the
benchmark's baseline for what grouping buys.

`run_merged` goes further for many small writes of one kind (single submissions): the callers'
items queued under the same key in one batch are handed to one call of their op, in one
savepoint, so N submissions cost one INSERT instead of N. If that call raises, each caller's
item is retried alone, so only the item at fault fails.

An op runs on the writer thread: it must only use the connection it is given, must not manage
transactions itself, and should be quick (it holds up the batch). A caller cancelled while
waiting does not unqueue its op: the write may still commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar, cast

from asyncfn.domain.errors import Unavailable

T = TypeVar("T")
I = TypeVar("I")  # noqa: E741
Op = Callable[[sqlite3.Connection], T]
Many = Callable[[sqlite3.Connection, list[I]], list[T]]
"""A write over many callers' items, one result per item (`run_merged`)."""

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Pending:
    op: Callable[[sqlite3.Connection], Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    result: Any = None
    error: BaseException | None = None
    done: bool = field(default=False)
    merge: _Merge | None = None


@dataclass(frozen=True, slots=True)
class _Merge:
    """A `run_merged` caller's share: its item, and the op that takes many callers' items."""

    key: Hashable
    item: Any
    many: Many[Any, Any]


class GroupCommitter:
    """Batches writes onto one connection owned by a dedicated thread; see the module docstring."""

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        *,
        max_batch: int = 2_000,
        inline: bool = False,
        name: str = "asyncfn-writer",
    ) -> None:
        """`connect` runs on the writer thread and must answer an autocommit connection
        (`isolation_level=None`)."""
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._connect = connect
        self._max_batch = 1 if inline else max_batch
        self.inline = inline
        self._name = name
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Future[None] | None = None
        self._accepting = False
        self.batches = 0
        """Transactions committed (or attempted)."""
        self.ops = 0
        """Ops run, whether they committed or not."""

    @property
    def running(self) -> bool:
        return self._accepting

    async def start(self) -> None:
        """Start the writer thread; answers once its connection is open (raising if it failed)."""
        if self._thread is not None:
            return
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        self._stopped = loop.create_future()
        self._thread = threading.Thread(
            target=self._main, args=(loop, ready, self._stopped), name=self._name, daemon=True
        )
        self._thread.start()
        try:
            await ready
        except BaseException:
            await self._join()
            raise
        self._accepting = True

    async def stop(self) -> None:
        """Refuse new ops, commit everything already queued, then close the connection and join
        the thread. Safe before `start` and twice."""
        if self._thread is None:
            return
        self._accepting = False
        self._queue.put(None)
        await self._join()

    async def run(self, op: Callable[[sqlite3.Connection], T], _merge: _Merge | None = None) -> T:
        """Run `op(conn)` in the next batch; answers its result once that batch committed.

        Raises what `op` raised (its writes rolled back), the commit's error when the batch
        could not commit, or `Unavailable` when the committer is not running.
        """
        if not self._accepting:
            raise Unavailable("the store is not open for writes")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Pending(op, cast("asyncio.Future[Any]", future), loop, merge=_merge))
        return await future

    async def run_merged(
        self,
        key: Hashable,
        item: I,
        many: Many[I, T],
    ) -> T:
        """Like `run`, for one item of a write that many callers make: `many(conn, items)` runs
        once for the items queued under `key` in the same batch (in the order they came) and
        answers one result per item; this caller gets its item's. Callers of one key must pass
        the same `many`."""
        merge = _Merge(key, item, cast("Many[Any, Any]", many))
        return await self.run(partial(_run_alone, item, many), merge)

    async def _join(self) -> None:
        thread, stopped = self._thread, self._stopped
        if thread is None or stopped is None:
            return
        await asyncio.shield(stopped)
        thread.join()
        self._thread = None
        self._stopped = None

    # -- the writer thread ---------------------------------------------------------------------
    def _main(
        self,
        loop: asyncio.AbstractEventLoop,
        ready: asyncio.Future[None],
        stopped: asyncio.Future[None],
    ) -> None:
        try:
            conn = self._connect()
        except Exception as error:
            loop.call_soon_threadsafe(_settle, ready, None, error)
            loop.call_soon_threadsafe(_settle, stopped, None, None)
            return
        loop.call_soon_threadsafe(_settle, ready, None, None)
        batch: list[_Pending] = []
        try:
            stopping = False
            while not stopping:
                batch, stopping = self._take()
                if batch:
                    self._commit(conn, batch)
                    _answer(batch)
        except BaseException as error:  # a bug in the loop itself: nobody may wait forever
            log.exception("the writer thread failed; failing every pending write")
            _fail([p for p in batch if not p.done], error)
            self._accepting = False
            _answer(batch)
            raise
        finally:
            self._fail_leftovers()
            conn.close()
            loop.call_soon_threadsafe(_settle, stopped, None, None)

    def _take(self) -> tuple[list[_Pending], bool]:
        """Block for the first op, then take whatever else is queued, up to `max_batch`."""
        first = self._queue.get()
        if first is None:
            return [], True
        batch = [first]
        while len(batch) < self._max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _commit(self, conn: sqlite3.Connection, batch: list[_Pending]) -> None:
        """Run `batch` in one transaction; every item ends with a result or an error."""
        self.batches += 1
        self.ops += len(batch)
        try:
            conn.execute("BEGIN IMMEDIATE")
        except Exception as error:
            _fail(batch, error)
            return
        for unit in _units(batch):
            try:
                if len(unit) > 1 and self._run_merged(conn, unit):
                    continue
            except Exception as error:  # SQLite rolled the whole transaction back
                _fail(batch, error)
                return
            for pending in unit:
                try:
                    conn.execute("SAVEPOINT op")
                    pending.result = pending.op(conn)
                    conn.execute("RELEASE op")
                except Exception as error:
                    pending.result, pending.error = None, error
                    if not _rollback_to_savepoint(conn):
                        # SQLite rolled the whole transaction back (I/O error, disk full…): the
                        # ops before this one are lost too, and the rest cannot run in it.
                        _fail([p for p in batch if p is not pending], error)
                        return
        try:
            conn.execute("COMMIT")
        except Exception as error:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            _fail([p for p in batch if p.error is None], error)

    @staticmethod
    def _run_merged(conn: sqlite3.Connection, unit: list[_Pending]) -> bool:
        """Run a unit of merged callers in one call. False when it raised and nothing of it was
        written: each caller's op then runs alone, so only the one at fault fails. Raises when
        SQLite ended the whole transaction."""
        many = unit[0].merge.many if unit[0].merge is not None else None
        assert many is not None
        conn.execute("SAVEPOINT merged")
        try:
            results = many(conn, [p.merge.item for p in unit if p.merge is not None])
            if len(results) != len(unit):
                raise RuntimeError(f"{len(results)} results for {len(unit)} merged items")
        except Exception:
            if not _rollback_to_savepoint(conn, "merged"):
                raise
            return False
        conn.execute("RELEASE merged")
        for pending, result in zip(unit, results, strict=True):
            pending.result = result
        return True

    def _fail_leftovers(self) -> None:
        leftovers: list[_Pending] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                leftovers.append(item)
        if leftovers:
            _fail(leftovers, Unavailable("the store closed before this write ran"))
            _answer(leftovers)


def _run_alone(item: I, many: Many[I, T], conn: sqlite3.Connection) -> T:
    (result,) = many(conn, [item])
    return result


def _units(batch: list[_Pending]) -> list[list[_Pending]]:
    """The batch in the order it runs: each op alone, except that the callers of one merge
    key form one unit, at the place of the first of them."""
    units: list[list[_Pending]] = []
    merged: dict[Hashable, list[_Pending]] = {}
    for pending in batch:
        if pending.merge is None:
            units.append([pending])
        elif (unit := merged.get(pending.merge.key)) is not None:
            unit.append(pending)
        else:
            merged[pending.merge.key] = unit = [pending]
            units.append(unit)
    return units


def _rollback_to_savepoint(conn: sqlite3.Connection, name: str = "op") -> bool:
    """Undo the failed op alone; False when SQLite already ended the whole transaction."""
    if not conn.in_transaction:
        return False
    try:
        conn.execute(f"ROLLBACK TO {name}")
        conn.execute(f"RELEASE {name}")
    except sqlite3.Error:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        return False
    return True


def _fail(items: list[_Pending], error: BaseException) -> None:
    for item in items:
        item.result, item.error = None, error


def _answer(batch: list[_Pending]) -> None:
    """Hand every result to its event loop: one `call_soon_threadsafe` per loop per batch."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Pending]] = {}
    for item in batch:
        if not item.done:
            item.done = True
            by_loop.setdefault(item.loop, []).append(item)
    for loop, items in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits there any more
            loop.call_soon_threadsafe(_deliver, items)


def _deliver(items: list[_Pending]) -> None:
    for item in items:
        _settle(item.future, item.result, item.error)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # the caller was cancelled
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
