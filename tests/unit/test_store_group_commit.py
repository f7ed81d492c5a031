"""GroupCommitter and the SQLite store's connections: batching, isolation of a failing op,
commit failure, clean stop, reads beside the writer, and a submit surviving SIGKILL."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from asyncfn.domain.errors import Unavailable
from asyncfn.domain.models import Submission
from asyncfn.domain.states import TaskStatus
from asyncfn.store.group_commit import GroupCommitter
from asyncfn.store.sqlite.store import SqliteStore

pytestmark = pytest.mark.timeout(20)

# -- group commit ------------------------------------------------------------------------------


def connect_to(path: Path) -> Callable[[], sqlite3.Connection]:
    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER PRIMARY KEY)")
        conn.execute(  # a deferred foreign key: broken only at COMMIT
            "CREATE TABLE IF NOT EXISTS c"
            " (x INTEGER REFERENCES t (x) DEFERRABLE INITIALLY DEFERRED)"
        )
        return conn

    return connect


def rows_in(path: Path) -> list[int]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return [x for (x,) in conn.execute("SELECT x FROM t ORDER BY x")]


def insert(x: int) -> Callable[[sqlite3.Connection], int]:
    def op(conn: sqlite3.Connection) -> int:
        conn.execute("INSERT INTO t (x) VALUES (?)", (x,))
        return x

    return op


def fail_after_insert(x: int) -> Callable[[sqlite3.Connection], int]:
    def op(conn: sqlite3.Connection) -> int:
        conn.execute("INSERT INTO t (x) VALUES (?)", (x,))
        raise ValueError(f"op {x} fails")

    return op


@pytest.fixture
async def committer(tmp_path: Path) -> AsyncIterator[GroupCommitter]:
    gc = GroupCommitter(connect_to(tmp_path / "gc.db"))
    await gc.start()
    try:
        yield gc
    finally:
        await gc.stop()


async def hold_writer(gc: GroupCommitter) -> tuple[threading.Event, asyncio.Future[None]]:
    """Occupy the writer thread so that what is queued next lands in one batch."""
    started, release = threading.Event(), threading.Event()

    def block(conn: sqlite3.Connection) -> None:
        started.set()
        release.wait(5)

    blocker = asyncio.ensure_future(gc.run(block))
    await asyncio.to_thread(started.wait, 5)
    return release, blocker


async def test_concurrent_writes_share_transactions(
    committer: GroupCommitter, tmp_path: Path
) -> None:
    results = await asyncio.gather(*(committer.run(insert(i)) for i in range(200)))

    assert results == list(range(200))
    assert committer.ops == 200
    assert committer.batches < committer.ops
    assert rows_in(tmp_path / "gc.db") == list(range(200))


async def test_a_failing_op_is_rolled_back_alone_and_its_batch_commits(
    committer: GroupCommitter, tmp_path: Path
) -> None:
    release, blocker = await hold_writer(committer)
    ops = [fail_after_insert(i) if i == 3 else insert(i) for i in range(6)]
    calls = [asyncio.ensure_future(committer.run(op)) for op in ops]
    await asyncio.sleep(0)  # every call is queued
    release.set()

    results = await asyncio.gather(*calls, return_exceptions=True)
    await blocker

    assert committer.batches == 2  # the blocker, then all six together
    assert isinstance(results[3], ValueError)
    assert [r for i, r in enumerate(results) if i != 3] == [0, 1, 2, 4, 5]
    assert rows_in(tmp_path / "gc.db") == [0, 1, 2, 4, 5]


def recording_many(
    seen: list[list[int]],
) -> Callable[[sqlite3.Connection, list[int]], list[int]]:
    """A merged op that inserts every item (an item of 13 breaks it) and records each call."""

    def many(conn: sqlite3.Connection, items: list[int]) -> list[int]:
        seen.append(list(items))
        conn.executemany("INSERT INTO t (x) VALUES (?)", [(x,) for x in items])
        if 13 in items:
            raise ValueError("13 is refused")
        return [x * 10 for x in items]

    return many


async def test_merged_callers_of_one_key_share_one_call_in_their_order(
    committer: GroupCommitter, tmp_path: Path
) -> None:
    seen: list[list[int]] = []
    many = recording_many(seen)
    release, blocker = await hold_writer(committer)
    calls = [
        asyncio.ensure_future(committer.run_merged("a", 1, many)),
        asyncio.ensure_future(committer.run(insert(100))),
        asyncio.ensure_future(committer.run_merged("b", 50, many)),
        asyncio.ensure_future(committer.run_merged("a", 2, many)),
        asyncio.ensure_future(committer.run_merged("a", 3, many)),
    ]
    await asyncio.sleep(0)
    release.set()

    results = await asyncio.gather(*calls)
    await blocker

    assert results == [10, 100, 500, 20, 30]
    assert seen == [[1, 2, 3], [50]]  # key a once, at its first caller's place; b alone
    assert committer.batches == 2
    assert rows_in(tmp_path / "gc.db") == [1, 2, 3, 50, 100]


async def test_a_failing_merged_call_is_retried_per_caller_and_only_the_culprit_fails(
    committer: GroupCommitter, tmp_path: Path
) -> None:
    seen: list[list[int]] = []
    many = recording_many(seen)
    release, blocker = await hold_writer(committer)
    calls = [asyncio.ensure_future(committer.run_merged("a", x, many)) for x in (1, 13, 2)]
    await asyncio.sleep(0)
    release.set()

    results = await asyncio.gather(*calls, return_exceptions=True)
    await blocker

    assert results[0] == 10 and results[2] == 20
    assert isinstance(results[1], ValueError)
    assert seen == [[1, 13, 2], [1], [13], [2]]
    assert rows_in(tmp_path / "gc.db") == [1, 2]  # the merged attempt left nothing behind


async def test_a_merged_op_with_a_wrong_result_count_fails_its_callers_only(
    committer: GroupCommitter, tmp_path: Path
) -> None:
    def short(conn: sqlite3.Connection, items: list[int]) -> list[int]:
        conn.executemany("INSERT INTO t (x) VALUES (?)", [(x,) for x in items])
        return []

    release, blocker = await hold_writer(committer)
    calls = [asyncio.ensure_future(committer.run_merged("a", x, short)) for x in (1, 2)]
    other = asyncio.ensure_future(committer.run(insert(7)))
    await asyncio.sleep(0)
    release.set()

    results = await asyncio.gather(*calls, return_exceptions=True)
    await blocker

    assert all(isinstance(r, ValueError) for r in results)  # each alone: no result to unpack
    assert await other == 7
    assert rows_in(tmp_path / "gc.db") == [7]


async def test_a_failed_commit_fails_every_caller_of_the_batch(
    committer: GroupCommitter, tmp_path: Path
) -> None:
    def dangling(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO c (x) VALUES (999)")

    release, blocker = await hold_writer(committer)
    calls = [asyncio.ensure_future(committer.run(op)) for op in (insert(1), dangling, insert(2))]
    await asyncio.sleep(0)
    release.set()

    results = await asyncio.gather(*calls, return_exceptions=True)
    await blocker

    assert all(isinstance(r, sqlite3.IntegrityError) for r in results)
    assert rows_in(tmp_path / "gc.db") == []
    assert await committer.run(insert(3)) == 3  # the writer carries on


async def test_inline_mode_commits_each_op_alone(tmp_path: Path) -> None:
    gc = GroupCommitter(connect_to(tmp_path / "gc.db"), inline=True)
    await gc.start()
    try:
        await asyncio.gather(*(gc.run(insert(i)) for i in range(20)))
    finally:
        await gc.stop()

    assert gc.batches == gc.ops == 20


async def test_stop_flushes_queued_writes_then_refuses(tmp_path: Path) -> None:
    gc = GroupCommitter(connect_to(tmp_path / "gc.db"))
    await gc.start()
    calls = [asyncio.ensure_future(gc.run(insert(i))) for i in range(50)]
    await asyncio.sleep(0)

    await gc.stop()
    await gc.stop()

    assert await asyncio.gather(*calls) == list(range(50))
    assert rows_in(tmp_path / "gc.db") == list(range(50))
    with pytest.raises(Unavailable):
        await gc.run(insert(99))


async def test_a_writer_that_cannot_connect_fails_start(tmp_path: Path) -> None:
    def broken() -> sqlite3.Connection:
        raise sqlite3.OperationalError("unable to open database file")

    gc = GroupCommitter(broken)

    with pytest.raises(sqlite3.OperationalError):
        await gc.start()
    with pytest.raises(Unavailable):
        await gc.run(insert(1))


# -- the SQLite store's connections ------------------------------------------------------------


async def test_the_writer_is_wal_synchronous_full_with_foreign_keys(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "asyncfn.db")
    await store.open()
    try:
        pragmas = await store.committer.run(
            lambda conn: [
                conn.execute(f"PRAGMA {name}").fetchone()[0]
                for name in ("journal_mode", "synchronous", "foreign_keys")
            ]
        )
    finally:
        await store.close()

    assert pragmas == ["wal", 2, 1]  # synchronous 2 is FULL


async def test_reads_do_not_wait_for_the_writer(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "asyncfn.db")
    await store.open()
    try:
        await store.submit_many("acme", "resize", [Submission(b"x", task_id="t1")], 1.0, 3, 0)
        release, blocker = await hold_writer(store.committer)
        try:
            found = await asyncio.wait_for(store.get_task("acme", "t1"), timeout=2)
        finally:
            release.set()
            await blocker
    finally:
        await store.close()

    assert found is not None and found.status == TaskStatus.ENQUEUED


# -- durability --------------------------------------------------------------------------------

CHILD = """
import asyncio, os, sys, time
from pathlib import Path
from asyncfn.domain.models import Submission
from asyncfn.store.sqlite.store import SqliteStore

async def main() -> None:
    store = SqliteStore(Path(sys.argv[1]))
    await store.open()
    await store.submit_many("acme", "resize", [Submission(b"keep me", task_id="t1")], 1.0, 3, 0)
    print("submitted", flush=True)
    time.sleep(60)  # killed here, with the store still open

asyncio.run(main())
"""


def test_a_submit_that_answered_survives_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "asyncfn.db"
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True
    ) as child:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "submitted"
        child.send_signal(signal.SIGKILL)
        child.wait(5)
    assert child.returncode == -signal.SIGKILL

    async def read_back() -> bytes | None:
        store = SqliteStore(path)
        await store.open()
        try:
            task = await store.get_task("acme", "t1")
        finally:
            await store.close()
        return None if task is None else task.payload

    assert asyncio.run(read_back()) == b"keep me"
