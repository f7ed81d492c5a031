"""The Store contract, bulk operations: counting the tasks a filter matches for each kind,
walking them in batches after a cursor up to the operation's bound, the batched stop of
waiting tasks (guarded like a single stop), and an operation's lease, progress and end.

Runs once per store implementation (see conftest.py). Times are explicit POSIX seconds.
"""

from __future__ import annotations

import dataclasses

import pytest

from asyncfn.domain.models import FunctionSpec, Submission, TaskKeys
from asyncfn.domain.operations import Operation, TaskFilter
from asyncfn.domain.states import TaskStatus
from asyncfn.store.base import Finish, Store

S = TaskStatus
T0 = 1_700_000_000.0
TENANT = "acme"
NODE = "node-a"

pytestmark = pytest.mark.timeout(30)


async def deploy(store: Store, *names: str) -> None:
    for name in names:
        await store.put_function(FunctionSpec(name=name, tenant=TENANT, handler="main:handler"))


async def submit(
    store: Store, function: str, ids: list[str], at: float = T0, **fields: object
) -> None:
    items = [Submission(b"{}", task_id=i, **fields) for i in ids]  # type: ignore[arg-type]
    await store.submit_many(TENANT, function, items, at, 3, 0)


async def finish_one(store: Store, function: str, status: TaskStatus, at: float) -> int:
    """Claim the next task of `function` and end it with `status`; answers its row."""
    (claimed,) = list(await store.claim_ready(TENANT, function, NODE, 1, at, at + 30))
    error = None if status is S.SUCCEEDED else {"type": "E", "message": "x", "traceback": None}
    assert await store.finish([Finish(claimed.row, 1, status, at, error=error)]) == [True]
    return claimed.row


async def status_of(store: Store, task_id: str) -> TaskStatus:
    task = await store.get_task(TENANT, task_id)
    assert task is not None, task_id
    return task.status


async def test_count_by_filter_fields_and_kind(store: Store) -> None:
    await deploy(store, "f", "g")
    await submit(store, "f", ["a1", "a2"], T0, keys=TaskKeys(concurrency=("user-1",)))
    await submit(store, "f", ["b1"], T0 + 10, attributes={"source": "s3", "type": "put"})
    await submit(store, "g", ["c1"], T0 + 20, keys=TaskKeys(throttle="user-1"))
    await finish_one(store, "g", S.FAILED, T0 + 21)

    def count(kind: str, **fields: object) -> object:
        f = TaskFilter(**fields)  # type: ignore[arg-type]
        return store.count_operation_tasks(TENANT, kind, f, T0 + 100)  # type: ignore[arg-type]

    assert await count("stop", everything=True) == 3
    assert await count("stop", function="f") == 3
    assert await count("stop", function="g") == 0
    assert await count("rerun", function="g") == 1
    assert await count("purge", everything=True) == 1
    assert await count("stop", key="user-1") == 2
    assert await count("rerun", key="user-1") == 1  # the throttle key of the ended task
    assert await count("stop", labels=(("source", "s3"),)) == 1
    assert await count("stop", labels=(("source", "s3"), ("type", "get"))) == 0
    assert await count("stop", created_after=T0 + 5) == 1
    assert await count("stop", created_before=T0 + 5) == 2
    assert await count("stop", statuses=(S.ENQUEUED,)) == 3
    assert await count("stop", statuses=(S.FAILED,)) == 0  # stop acts on no ended task
    assert await count("rerun", statuses=(S.SUCCEEDED,)) == 0
    other = await store.count_operation_tasks("other", "stop", TaskFilter(everything=True), T0)
    assert other == 0


async def test_rerun_and_purge_take_tasks_ended_by_the_operation_and_not_purged(
    store: Store,
) -> None:
    await deploy(store, "f")
    await submit(store, "f", ["a", "b", "c"])
    await finish_one(store, "f", S.SUCCEEDED, T0 + 1)
    await finish_one(store, "f", S.FAILED, T0 + 50)
    f = TaskFilter(function="f")

    assert await store.count_operation_tasks(TENANT, "rerun", f, T0 + 10) == 1
    assert await store.count_operation_tasks(TENANT, "purge", f, T0 + 100) == 2
    assert await store.purge_task(TENANT, "a", T0 + 101) is not None
    assert await store.count_operation_tasks(TENANT, "purge", f, T0 + 102) == 1
    assert await store.count_operation_tasks(TENANT, "rerun", f, T0 + 102) == 2


async def test_create_bounds_the_walk_and_batches_page_after_the_cursor(store: Store) -> None:
    await deploy(store, "f")
    await submit(store, "f", [f"t{i}" for i in range(7)])
    op = await store.create_operation("op1", TENANT, "stop", TaskFilter(function="f"), T0 + 1)
    await submit(store, "f", ["late"], T0 + 2)  # after the operation: not in it

    assert (op.id, op.kind, op.status, op.total, op.done, op.skipped) == (
        "op1",
        "stop",
        "running",
        7,
        0,
        0,
    )
    assert op.cursor is None and op.finished_at is None
    assert op.filter == TaskFilter(function="f")
    first = await store.operation_batch(op, 3)
    assert [t.id for t in first] == ["t0", "t1", "t2"]
    assert all(t.function == "f" and t.status is S.ENQUEUED for t in first)
    rest = await store.operation_batch(dataclasses.replace(op, cursor=first[-1].row), 10)
    assert [t.id for t in rest] == ["t3", "t4", "t5", "t6"]
    assert await store.operation_batch(dataclasses.replace(op, cursor=rest[-1].row), 10) == []


async def test_batched_stop_moves_waiting_tasks_only_guarded(store: Store) -> None:
    await deploy(store, "f")
    await submit(store, "f", ["run", "w1", "w2", "done"])
    await finish_one(store, "f", S.SUCCEEDED, T0 + 1)  # "run" ends: rows are claimed in order
    (live,) = list(await store.claim_ready(TENANT, "f", NODE, 1, T0 + 2, T0 + 32))
    assert live.id == "w1"

    answers = await store.stop_waiting(TENANT, ["run", "w1", "w2", "nope"], T0 + 3, {"by": "t"})

    by_id = {a.id: a for a in answers}
    assert set(by_id) == {"run", "w1", "w2"}  # an unknown task is left out
    assert (by_id["w2"].changed, by_id["w2"].status) == (True, S.STOPPED)
    assert (by_id["w1"].changed, by_id["w1"].live, by_id["w1"].status) == (False, True, S.RUNNING)
    assert (by_id["run"].changed, by_id["run"].status) == (False, S.SUCCEEDED)
    assert await status_of(store, "w2") is S.STOPPED
    assert await status_of(store, "w1") is S.RUNNING
    assert await status_of(store, "done") is S.ENQUEUED  # not asked
    task = await store.get_task(TENANT, "w2")
    assert task is not None and task.events[-1].status == S.STOPPED
    assert task.events[-1].detail == {"by": "t", "from": "Enqueued"}
    again = await store.stop_waiting(TENANT, ["w2"], T0 + 4, None)
    assert [(a.changed, a.status) for a in again] == [(False, S.STOPPED)]


async def test_lease_progress_and_end(store: Store) -> None:
    await deploy(store, "f")
    await submit(store, "f", ["a", "b"])
    f = TaskFilter(function="f")
    op = await store.create_operation("op1", TENANT, "stop", f, T0 + 1)

    claimed = await store.claim_operation(NODE, T0 + 2, T0 + 32)
    assert claimed is not None and claimed.id == "op1" and claimed.owner == NODE
    assert await store.claim_operation("node-b", T0 + 3, T0 + 33) is None  # leased
    assert await store.save_operation("op1", "node-b", 1, 0, 5, T0 + 3, T0 + 33) is False
    assert await store.save_operation("op1", NODE, 1, 1, 5, T0 + 4, T0 + 34) is True

    # The owner's lease lapses: another node takes it over where the progress stands.
    taken = await store.claim_operation("node-b", T0 + 40, T0 + 70)
    assert taken is not None
    assert (taken.owner, taken.done, taken.skipped, taken.cursor) == ("node-b", 1, 1, 5)
    assert await store.save_operation("op1", NODE, 2, 1, 6, T0 + 41, T0 + 71) is False
    assert await store.end_operation("op1", NODE, "succeeded", 2, 0, 6, None, T0 + 42) is False
    ended = await store.end_operation("op1", "node-b", "succeeded", 2, 0, 6, None, T0 + 43)
    assert ended is True
    assert await store.claim_operation("node-b", T0 + 44, T0 + 74) is None

    got = await store.get_operation(TENANT, "op1")
    assert isinstance(got, Operation)
    assert (got.status, got.done, got.skipped, got.finished_at) == ("succeeded", 2, 0, T0 + 43)
    assert got.owner is None
    assert await store.get_operation("other", "op1") is None
    assert op.max_row == got.max_row


async def test_list_newest_first_per_tenant_and_failed_end(store: Store) -> None:
    await deploy(store, "f")
    f = TaskFilter(everything=True)
    for i in range(3):
        await store.create_operation(f"op{i}", TENANT, "purge", f, T0 + i)
    await store.create_operation("theirs", "other", "purge", f, T0 + 9)

    listed = await store.list_operations(TENANT, 2)
    assert [op.id for op in listed] == ["op2", "op1"]
    assert all(op.total == 0 for op in listed)
    claimed = await store.claim_operation(NODE, T0 + 10, T0 + 40)
    assert claimed is not None and claimed.id == "op0"  # the oldest first
    assert await store.end_operation("op0", NODE, "failed", 0, 0, None, "E: boom", T0 + 11)
    got = await store.get_operation(TENANT, "op0")
    assert got is not None and (got.status, got.error) == ("failed", "E: boom")
