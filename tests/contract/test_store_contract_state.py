"""The Store contract, part 2: around a task's life — logs, listing, lost tasks and leases,
functions and code, counts, and the schema's own guard.

Runs once per store implementation (see conftest.py). Times are explicit POSIX seconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from pathlib import Path

import pytest

from asyncfn.domain.models import ClaimedTask, FunctionSpec, Submission, Task, TaskQuery
from asyncfn.domain.states import TaskStatus
from asyncfn.store.base import Finish, NewLogLine, RetryLater, Store

S = TaskStatus
T0 = 1_700_000_000.0
TENANT = "acme"
FN = "resize"

pytestmark = pytest.mark.timeout(15)


async def submit(
    store: Store, *ids: str, now: float = T0, function: str = FN, tenant: str = TENANT
) -> None:
    items = [Submission(i.encode(), task_id=i) for i in ids]
    await store.submit_many(tenant, function, items, now, 3, 0)


async def claim(
    store: Store, now: float = T0 + 1, node: str = "node-a", function: str = FN, lease: float = 30
) -> list[ClaimedTask]:
    return list(await store.claim_ready(TENANT, function, node, 100, now, now + lease))


async def task(store: Store, task_id: str) -> Task:
    found = await store.get_task(TENANT, task_id)
    assert found is not None, task_id
    return found


# -- logs --------------------------------------------------------------------------------------


async def test_logs_append_in_order_and_read_after_a_sequence(store: Store) -> None:
    await submit(store, "t1", "t2")
    one, two = await claim(store)
    await store.append_logs(
        [
            NewLogLine(one.row, T0 + 1, "stdout", "starting"),
            NewLogLine(two.row, T0 + 1, "stdout", "other task"),
            NewLogLine(one.row, T0 + 2, "stderr", "warning: slow"),
        ]
    )
    await store.append_logs([NewLogLine(one.row, T0 + 3, "stdout", "done")])

    lines = await store.read_logs(TENANT, "t1")
    assert lines is not None
    assert [(ln.seq, ln.stream, ln.line) for ln in lines] == [
        (1, "stdout", "starting"),
        (2, "stderr", "warning: slow"),
        (3, "stdout", "done"),
    ]
    later = await store.read_logs(TENANT, "t1", after=1, limit=1)
    assert later is not None
    assert [(ln.seq, ln.at, ln.line) for ln in later] == [(2, T0 + 2, "warning: slow")]
    assert await store.read_logs(TENANT, "t1", after=3) == []
    assert [ln.line for ln in await store.read_logs(TENANT, "t2") or []] == ["other task"]


async def test_logs_of_an_unknown_task_are_none(store: Store) -> None:
    assert await store.read_logs(TENANT, "nope") is None


# -- listing -----------------------------------------------------------------------------------


async def test_list_tasks_filters_by_function_status_and_creation_time(store: Store) -> None:
    await submit(store, "a0", now=T0)
    await submit(store, "a1", now=T0 + 10)
    await submit(store, "b0", now=T0 + 20, function="thumbnail")
    await submit(store, "a2", now=T0 + 30)
    await submit(store, "elsewhere", now=T0 + 30, tenant="umbrella")
    await claim(store, now=T0 + 40)  # a0, a1, a2 → Running

    async def ids(query: TaskQuery) -> list[str]:
        tasks, cursor = await store.list_tasks(query)
        assert cursor is None
        return [t.id for t in tasks]

    assert await ids(TaskQuery(TENANT)) == ["a2", "b0", "a1", "a0"]
    assert await ids(TaskQuery(TENANT, function=FN)) == ["a2", "a1", "a0"]
    assert await ids(TaskQuery(TENANT, status=S.ENQUEUED)) == ["b0"]
    assert await ids(TaskQuery(TENANT, function=FN, status=S.RUNNING)) == ["a2", "a1", "a0"]
    assert await ids(TaskQuery(TENANT, since=T0 + 10)) == ["a2", "b0", "a1"]
    assert await ids(TaskQuery(TENANT, until=T0 + 20)) == ["a1", "a0"]
    assert await ids(TaskQuery(TENANT, since=T0 + 10, until=T0 + 30)) == ["b0", "a1"]
    tasks, _ = await store.list_tasks(TaskQuery(TENANT, function="thumbnail"))
    assert tasks[0].events == () and tasks[0].payload == b"b0"


async def test_list_tasks_pages_newest_first_without_gaps_or_duplicates(store: Store) -> None:
    ids = [f"t{i:02d}" for i in range(23)]
    for i, task_id in enumerate(ids):
        await submit(store, task_id, now=T0 + i)

    seen: list[str] = []
    cursor: int | None = None
    pages = 0
    while True:
        page, cursor = await store.list_tasks(TaskQuery(TENANT, limit=5, cursor=cursor))
        seen += [t.id for t in page]
        pages += 1
        if cursor is None:
            break

    assert seen == list(reversed(ids))
    assert pages == 5


async def test_a_page_that_ends_exactly_at_the_last_task_has_no_next_cursor(
    store: Store,
) -> None:
    await submit(store, "t0", "t1", "t2", "t3")

    first, cursor = await store.list_tasks(TaskQuery(TENANT, limit=2))
    second, last = await store.list_tasks(TaskQuery(TENANT, limit=2, cursor=cursor))

    assert [t.id for t in first + second] == ["t3", "t2", "t1", "t0"]
    assert last is None


# -- lost tasks and leases ---------------------------------------------------------------------


async def test_find_lost_finds_expired_leases_and_every_running_task_of_a_node(
    store: Store,
) -> None:
    await submit(store, "short", "long")
    await claim(store, now=T0 + 1, node="node-a", lease=10)  # both leased until T0 + 11
    await submit(store, "b-task", now=T0 + 2)
    await claim(store, now=T0 + 2, node="node-b", lease=100)

    assert await store.find_lost(None, T0 + 10, limit=10) == []
    expired = await store.find_lost(None, T0 + 11, limit=10)
    assert sorted(t.id for t in expired) == ["long", "short"]
    lost = expired[0]
    assert (lost.tenant, lost.function, lost.attempt, lost.node) == (TENANT, FN, 1, "node-a")
    assert lost.started_at == T0 + 1
    by_node = await store.find_lost("node-b", T0 + 5, limit=10)
    assert [t.id for t in by_node] == ["b-task"]
    assert len(await store.find_lost("node-b", T0 + 11, limit=10)) == 3
    assert len(await store.find_lost("node-b", T0 + 11, limit=2)) == 2


async def test_finished_tasks_are_never_lost(store: Store) -> None:
    await submit(store, "t1")
    (claimed,) = await claim(store, lease=10)
    await store.finish([Finish(claimed.row, 1, S.SUCCEEDED, T0 + 2)])

    assert await store.find_lost("node-a", T0 + 100, limit=10) == []


async def test_renew_leases_extends_only_the_nodes_own_running_tasks(store: Store) -> None:
    await submit(store, "mine", "done")
    mine, done = await claim(store, node="node-a", lease=10)
    await store.finish([Finish(done.row, 1, S.SUCCEEDED, T0 + 2)])
    await submit(store, "theirs")
    (theirs,) = await claim(store, node="node-b", lease=10)

    held = await store.renew_leases("node-a", [mine.row, done.row, theirs.row], until=T0 + 100)

    assert held == 1
    lost = await store.find_lost(None, T0 + 50, limit=10)
    assert [t.id for t in lost] == ["theirs"]


# -- functions and code ------------------------------------------------------------------------


async def test_functions_are_created_updated_listed_and_fetched(store: Store) -> None:
    spec = FunctionSpec(name=FN, tenant=TENANT, handler="app:handler", timeout_s=30)
    sha = await store.put_code(b"zip-bytes", T0)

    assert await store.put_function(spec) is True
    assert (await store.set_function_code(TENANT, FN, sha, T0 + 1)) is not None
    created = await store.get_function(TENANT, FN)
    assert created is not None
    assert (created.handler, created.timeout_s, created.code_sha256) == ("app:handler", 30, sha)

    updated = FunctionSpec(
        name=FN, tenant=TENANT, handler="app:other", command=None, env={"A": "1"}
    )
    assert await store.put_function(updated) is False
    got = await store.get_function(TENANT, FN)
    assert got is not None
    assert (got.handler, got.timeout_s, got.env) == ("app:other", 60, {"A": "1"})
    assert got.code_sha256 == sha  # kept across a config update
    assert got.created_at == created.created_at
    assert got.updated_at >= created.updated_at

    await store.put_function(
        FunctionSpec(
            name="a-first", tenant=TENANT, runtime="command", command=("ffmpeg", "-i", "pipe:0")
        )
    )
    await store.put_function(FunctionSpec(name="z-other", tenant="umbrella"))
    assert [f.name for f in await store.list_functions(TENANT)] == ["a-first", FN]
    assert len(await store.list_functions()) == 3
    first = await store.get_function(TENANT, "a-first")
    assert first is not None and first.command == ("ffmpeg", "-i", "pipe:0")
    assert await store.get_function("umbrella", FN) is None


async def test_set_function_code_of_an_unknown_function_is_none(store: Store) -> None:
    sha = await store.put_code(b"zip", T0)

    assert await store.set_function_code(TENANT, "nope", sha, T0) is None


async def test_code_is_stored_by_sha256_and_storing_it_twice_is_a_no_op(store: Store) -> None:
    data = b"PK\x03\x04 not really a zip \x00\xff"

    sha = await store.put_code(data, T0)
    again = await store.put_code(data, T0 + 1)

    assert sha == again == hashlib.sha256(data).hexdigest()
    assert await store.get_code(sha) == data
    assert await store.get_code("0" * 64) is None


async def test_delete_function_invalidates_waiting_tasks_but_leaves_running_ones(
    store: Store,
) -> None:
    await store.put_function(FunctionSpec(name=FN, tenant=TENANT))
    await submit(store, "running", "retrying")
    _, retrying = await claim(store)
    await store.retry_later([RetryLater(retrying.row, 1, T0 + 2, T0 + 60, {"type": "E"})])
    await submit(store, "queued", "delayed", now=T0 + 3)
    await submit(store, "other-fn", function="thumbnail")

    assert await store.delete_function(TENANT, FN, now=T0 + 5) == 3

    assert await store.get_function(TENANT, FN) is None
    for task_id in ("queued", "delayed", "retrying"):
        gone = await task(store, task_id)
        assert (gone.status, gone.finished_at) == (S.INVALID, T0 + 5)
        assert gone.events[-1].detail == {"reason": "function deleted"}
    assert (await task(store, "running")).status == S.RUNNING
    assert (await task(store, "other-fn")).status == S.ENQUEUED


async def test_delete_unknown_function_answers_none(store: Store) -> None:
    assert await store.delete_function(TENANT, "nope", now=T0) is None


# -- counts ------------------------------------------------------------------------------------


async def test_count_by_status_counts_each_status_of_a_function(store: Store) -> None:
    await submit(store, "a", "b", "c", "d")
    a, _ = await store.claim_ready(TENANT, FN, "node-a", 2, T0 + 1, T0 + 31)
    await store.finish([Finish(a.row, 1, S.SUCCEEDED, T0 + 2)])
    await submit(store, "elsewhere", function="thumbnail")

    counts = await store.count_by_status(TENANT, FN)

    assert counts[S.ENQUEUED] == 2
    assert counts[S.RUNNING] == 1
    assert counts[S.SUCCEEDED] == 1
    assert sum(counts.values()) == 4
    assert set(counts) == set(TaskStatus)


# -- the schema's own guard --------------------------------------------------------------------


async def test_schema_refuses_a_terminal_status_without_finished_at(
    store: Store, store_kind: str, tmp_path: Path
) -> None:
    if store_kind != "sqlite":
        pytest.skip("pokes the SQLite file with raw SQL; the PostgreSQL schema has the same CHECK")
    await submit(store, "t1")
    row = (await task(store, "t1")).row

    with contextlib.closing(sqlite3.connect(tmp_path / "asyncfn.db")) as conn:
        for sql in (
            "UPDATE tasks SET status = 'Succeeded' WHERE row = ?",
            "UPDATE tasks SET finished_at = 1.0 WHERE row = ?",
            "UPDATE tasks SET status = 'Done', finished_at = 1.0 WHERE row = ?",
        ):
            with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
                conn.execute(sql, (row,))
        conn.rollback()

    assert (await task(store, "t1")).status == S.ENQUEUED
