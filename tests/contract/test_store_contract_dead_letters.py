"""The Store contract, dead letters: a task of a function with `async.on_dead_letter` that ends
Failed or Expired is listed in the transition's own transaction (never for a retried attempt,
a stop, or a function without it); the list pages newest first; a rerun marks its entry once.

Runs once per store implementation (see conftest.py). Times are explicit POSIX seconds.
"""

from __future__ import annotations

import pytest

from asyncfn.domain.deadletters import AlreadyRerun, DeadLetter
from asyncfn.domain.models import AsyncPolicy, ClaimedTask, FunctionSpec, Submission, TaskQuery
from asyncfn.domain.states import TaskStatus
from asyncfn.store.base import Finish, RetryLater, Store

S = TaskStatus
T0 = 1_700_000_000.0
TENANT = "acme"
FN = "resize"
NODE = "node-a"
LISTED = AsyncPolicy(max_retries=1, on_dead_letter={"type": "list"})
HOOK = {"type": "http", "url": "http://127.0.0.1:9/dead", "secret": "k"}
ERROR = {"type": "ValueError", "message": "bad", "traceback": None}

pytestmark = pytest.mark.timeout(15)


async def deploy(store: Store, policy: AsyncPolicy = LISTED, name: str = FN) -> None:
    await store.put_function(
        FunctionSpec(name=name, tenant=TENANT, handler="main:handler", async_policy=policy)
    )


async def submit(store: Store, task_id: str, function: str = FN, at: float = T0) -> None:
    submission = Submission(b'{"n": 1}', task_id=task_id)
    (done,) = await store.submit_many(TENANT, function, [submission], at, 2, 0)
    assert done.created


async def claim(store: Store, function: str = FN, at: float = T0 + 1) -> ClaimedTask:
    (claimed,) = list(await store.claim_ready(TENANT, function, NODE, 1, at, at + 30))
    return claimed


async def failed(store: Store, task_id: str, function: str = FN, at: float = T0 + 2) -> None:
    """Submitted, claimed and ended Failed at `at`."""
    await submit(store, task_id, function, at - 2)
    claimed = await claim(store, function, at - 1)
    finish = Finish(claimed.row, claimed.attempt, S.FAILED, at, error=ERROR)
    assert await store.finish([finish]) == [True]


async def listed(store: Store, function: str | None = None) -> list[DeadLetter]:
    entries, _ = await store.list_dead_letters(TENANT, function, 100)
    return entries


async def test_a_task_failed_after_its_last_attempt_is_a_dead_letter(store: Store) -> None:
    await deploy(store)
    await submit(store, "t1")
    first = await claim(store)
    retry = RetryLater(first.row, 1, T0 + 2, T0 + 3, ERROR)
    assert await store.retry_later([retry]) == [True]
    assert await listed(store) == []  # a retried attempt is no dead letter

    await store.promote_due(T0 + 3, 10)
    second = await claim(store, at=T0 + 4)
    assert second.attempt == 2
    assert await store.finish([Finish(second.row, 2, S.FAILED, T0 + 5, error=ERROR)]) == [True]

    (entry,) = await listed(store)
    assert (entry.task_id, entry.function, entry.status) == ("t1", FN, S.FAILED)
    assert (entry.attempts, entry.at, entry.error) == (2, T0 + 5, ERROR)
    assert (entry.rerun_as, entry.rerun_at) == (None, None)


async def test_an_expired_task_is_a_dead_letter(store: Store) -> None:
    await deploy(store)
    await submit(store, "old")

    assert await store.expire(TENANT, FN, T0 + 1, T0 + 100, 10) == 1

    (entry,) = await listed(store)
    assert (entry.task_id, entry.status, entry.attempts, entry.at) == (
        "old",
        S.EXPIRED,
        0,
        T0 + 100,
    )
    assert entry.error is not None and entry.error["type"] == "Expired"


async def test_stopped_succeeded_and_invalid_tasks_are_not(store: Store) -> None:
    await deploy(store)
    await submit(store, "waiting")
    assert await store.stop(TENANT, "waiting", T0 + 1, None) is not None
    await submit(store, "running")
    running = await claim(store, at=T0 + 2)
    ctl = await store.stop(TENANT, "running", T0 + 3, None)
    assert ctl is not None and ctl.status is S.STOPPING
    assert await store.finish([Finish(running.row, 1, S.STOPPED, T0 + 4)]) == [True]
    await submit(store, "ok")
    done = await claim(store, at=T0 + 5)
    assert await store.finish([Finish(done.row, 1, S.SUCCEEDED, T0 + 6, result=1)]) == [True]
    await submit(store, "orphan")
    assert await store.delete_function(TENANT, FN, T0 + 7) == 1

    assert await listed(store) == []


async def test_a_function_without_on_dead_letter_keeps_none(store: Store) -> None:
    await deploy(store, AsyncPolicy(max_retries=0, on_failure=HOOK))
    await failed(store, "t1")
    await submit(store, "old", at=T0 + 10)
    assert await store.expire(TENANT, FN, T0 + 11, T0 + 20, 10) == 1

    assert await listed(store) == []
    assert len((await store.task_deliveries(TENANT, "t1")) or []) == 1


async def test_a_destination_gets_a_delivery_marked_as_dead_letter(store: Store) -> None:
    policy = AsyncPolicy(max_retries=0, on_failure=HOOK, on_dead_letter=HOOK)
    await deploy(store, policy)
    await failed(store, "t1")

    deliveries = await store.task_deliveries(TENANT, "t1")

    assert deliveries is not None
    assert sorted(d.destination.dead_letter for d in deliveries) == [False, True]
    assert [e.task_id for e in await listed(store)] == ["t1"]


async def test_the_list_pages_newest_first_per_tenant_and_function(store: Store) -> None:
    await deploy(store)
    await deploy(store, name="other")
    for i in range(5):
        await failed(store, f"t{i}", at=T0 + 10 + i)
    await failed(store, "o1", "other", at=T0 + 30)
    await store.put_function(
        FunctionSpec(name=FN, tenant="globex", handler="main:handler", async_policy=LISTED)
    )

    first, cursor = await store.list_dead_letters(TENANT, FN, 2)
    assert [e.task_id for e in first] == ["t4", "t3"] and cursor is not None
    second, cursor = await store.list_dead_letters(TENANT, FN, 2, cursor)
    assert [e.task_id for e in second] == ["t2", "t1"] and cursor is not None
    last, cursor = await store.list_dead_letters(TENANT, FN, 2, cursor)
    assert [e.task_id for e in last] == ["t0"] and cursor is None

    every, cursor = await store.list_dead_letters(TENANT, None, 10)
    assert [e.task_id for e in every] == ["o1", "t4", "t3", "t2", "t1", "t0"] and cursor is None
    assert await store.list_dead_letters("globex", None, 10) == ([], None)


async def test_a_rerun_marks_the_entry_once(store: Store) -> None:
    await deploy(store)
    await failed(store, "t1")

    rerun = await store.rerun_dead_letter(TENANT, "t1", None, T0 + 50, 2, 0)

    assert rerun is not None and rerun.created and rerun.status is S.ENQUEUED
    (entry,) = await listed(store)
    assert (entry.rerun_as, entry.rerun_at) == (rerun.task_id, T0 + 50)
    again = await store.get_task(TENANT, rerun.task_id)
    assert again is not None and again.rerun_of == "t1" and again.payload == b'{"n": 1}'

    with pytest.raises(AlreadyRerun) as refused:
        await store.rerun_dead_letter(TENANT, "t1", None, T0 + 60, 2, 0)
    assert refused.value.extra["rerun_as"] == rerun.task_id
    (entry,) = await listed(store)
    assert entry.rerun_at == T0 + 50
    tasks, _ = await store.list_tasks(TaskQuery(tenant=TENANT))
    assert len(tasks) == 2  # the refused rerun made no task


async def test_rerun_of_a_task_that_is_no_dead_letter_answers_none(store: Store) -> None:
    await deploy(store, AsyncPolicy(max_retries=0))
    await failed(store, "plain")
    await deploy(store)
    await failed(store, "listed")

    assert await store.rerun_dead_letter(TENANT, "plain", None, T0 + 50, 2, 0) is None
    assert await store.rerun_dead_letter(TENANT, "nope", None, T0 + 50, 2, 0) is None
    assert await store.rerun_dead_letter("globex", "listed", None, T0 + 50, 2, 0) is None


async def test_a_rerun_under_a_taken_id_leaves_the_entry_unmarked(store: Store) -> None:
    await deploy(store)
    await failed(store, "t1")
    await submit(store, "taken", at=T0 + 10)

    rerun = await store.rerun_dead_letter(TENANT, "t1", "taken", T0 + 50, 2, 0)

    assert rerun is not None and not rerun.created
    (entry,) = await listed(store)
    assert entry.rerun_as is None


async def test_each_entry_is_at_its_own_end_within_one_batch(store: Store) -> None:
    await deploy(store, AsyncPolicy(max_retries=0, on_dead_letter={"type": "list"}))
    for task_id in ("a", "b"):
        await submit(store, task_id)
    claimed = list(await store.claim_ready(TENANT, FN, NODE, 2, T0 + 1, T0 + 31))
    ends = [Finish(c.row, 1, S.FAILED, T0 + 2 + i, error=ERROR) for i, c in enumerate(claimed)]

    assert await store.finish(ends) == [True, True]

    at = {e.task_id: e.at for e in await listed(store)}
    assert at == {c.id: T0 + 2 + i for i, c in enumerate(claimed)}


async def test_a_purge_erases_the_traceback_from_the_list_too(store: Store) -> None:
    await deploy(store)
    await submit(store, "t1")
    claimed = await claim(store)
    error = {**ERROR, "traceback": "line 1 secret-7d1c"}
    assert await store.finish([Finish(claimed.row, 1, S.FAILED, T0 + 2, error=error)]) == [True]
    (entry,) = await listed(store)
    assert entry.error == error

    assert await store.purge_task(TENANT, "t1", T0 + 10) is not None

    (entry,) = await listed(store)
    assert entry.error == ERROR
