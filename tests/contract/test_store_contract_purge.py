"""The Store contract, purge: an ended task's payload, result, checkpoint, traceback, progress
message and logs erased from the tables, its state history kept; and the sweep of the
functions that keep no payload.

Runs once per store implementation (see conftest.py). Times are explicit POSIX seconds.
"""

from __future__ import annotations

import pytest

from asyncfn.domain.errors import TransitionRefused
from asyncfn.domain.models import AsyncPolicy, ClaimedTask, FunctionSpec, Submission, Task
from asyncfn.domain.states import TaskStatus
from asyncfn.store.base import PURGED_FIELDS, Finish, NewLogLine, Store

S = TaskStatus
T0 = 1_700_000_000.0
TENANT = "acme"
FN = "resize"
NODE = "node-a"
MARKER = "purge-me-7d1c"
HOOK = {"type": "http", "url": "http://127.0.0.1:9/hook", "secret": "k"}

pytestmark = pytest.mark.timeout(15)


async def deploy(store: Store, policy: AsyncPolicy | None = None) -> None:
    """The function, keeping no payload (`retain_payload` False)."""
    await store.put_function(
        FunctionSpec(
            name=FN,
            tenant=TENANT,
            handler="main:handler",
            retain_payload=False,
            async_policy=policy or AsyncPolicy(),
        )
    )


async def task(store: Store, task_id: str = "t1") -> Task:
    found = await store.get_task(TENANT, task_id)
    assert found is not None, task_id
    return found


async def running(store: Store, task_id: str = "t1") -> ClaimedTask:
    payload = f'{{"secret": "{MARKER}"}}'.encode()
    await store.submit_many(TENANT, FN, [Submission(payload, task_id=task_id)], T0, 3, 0)
    claim = await store.claim_ready(TENANT, FN, NODE, 1, T0 + 1, T0 + 31)
    (claimed,) = list(claim)
    assert await store.save_checkpoint(claimed.row, 1, {"cursor": MARKER})
    assert await store.save_progress(claimed.row, 1, 0.5, f"at {MARKER}")
    await store.append_logs([NewLogLine(claimed.row, T0 + 1.5, "stdout", f"saw {MARKER}")])
    return claimed


async def ended(
    store: Store, task_id: str = "t1", status: TaskStatus = S.FAILED, at: float = T0 + 2
) -> ClaimedTask:
    claimed = await running(store, task_id)
    error = None
    if status is not S.SUCCEEDED:
        error = {"type": "ValueError", "message": "bad", "traceback": f"line 1 {MARKER}"}
    result = {"echo": MARKER} if status is S.SUCCEEDED else None
    finish = Finish(claimed.row, 1, status, at, result=result, error=error)
    assert await store.finish([finish]) == [True]
    return claimed


async def test_purge_erases_data_and_keeps_the_history(store: Store) -> None:
    await ended(store, status=S.FAILED)
    before = await task(store)

    purged = await store.purge_task(TENANT, "t1", T0 + 10)

    assert purged is not None
    assert (purged.task_id, purged.purged_at, purged.changed) == ("t1", T0 + 10, True)
    assert purged.purged == PURGED_FIELDS
    after = await task(store)
    assert after.payload == b""
    assert after.result is None and after.checkpoint is None
    assert after.error == {"type": "ValueError", "message": "bad", "traceback": None}
    assert after.progress == {"fraction": 0.5, "message": None}
    assert after.attempts[0].error is not None
    assert after.attempts[0].error["traceback"] is None
    assert after.purged_at == T0 + 10
    assert await store.read_logs(TENANT, "t1") == []
    assert MARKER not in repr(after)
    # The state history stays, with one more event saying what was erased.
    assert after.status is S.FAILED and after.finished_at == before.finished_at
    assert after.events[:-1] == before.events
    assert after.events[-1].status == S.FAILED.value
    assert after.events[-1].detail == {"purged": list(PURGED_FIELDS)}


async def test_purge_again_answers_the_first_purge_and_erases_late_lines(store: Store) -> None:
    claimed = await ended(store, status=S.SUCCEEDED)
    first = await store.purge_task(TENANT, "t1", T0 + 10)
    await store.append_logs([NewLogLine(claimed.row, T0 + 11, "stderr", f"late {MARKER}")])

    again = await store.purge_task(TENANT, "t1", T0 + 20)

    assert first is not None and again is not None
    assert (again.purged_at, again.changed) == (T0 + 10, False)
    assert await store.read_logs(TENANT, "t1") == []
    events = (await task(store)).events
    assert [e.detail for e in events].count({"purged": list(PURGED_FIELDS)}) == 1


async def test_purge_of_unknown_task_answers_none(store: Store) -> None:
    assert await store.purge_task(TENANT, "nope", T0) is None


async def test_purge_of_a_task_not_ended_is_refused(store: Store) -> None:
    await running(store)

    with pytest.raises(TransitionRefused):
        await store.purge_task(TENANT, "t1", T0 + 3)

    still = await task(store)
    assert MARKER.encode() in still.payload
    assert still.purged_at is None
    assert len(await store.read_logs(TENANT, "t1") or []) == 1


async def test_purge_unretained_sweeps_ended_tasks_once(store: Store) -> None:
    await deploy(store)
    await ended(store, "t1", S.SUCCEEDED)
    await running(store, "t2")

    assert await store.purge_unretained(TENANT, FN, T0 + 5, 100) == 1
    assert await store.purge_unretained(TENANT, FN, T0 + 6, 100) == 0

    assert (await task(store, "t1")).purged_at == T0 + 5
    assert (await task(store, "t2")).purged_at is None  # still running: left alone


async def test_purge_unretained_waits_for_pending_deliveries(store: Store) -> None:
    await deploy(store, AsyncPolicy(on_success=HOOK))
    await ended(store, "t1", S.SUCCEEDED)

    assert await store.purge_unretained(TENANT, FN, T0 + 5, 100) == 0
    assert (await task(store)).result == {"echo": MARKER}  # the delivery still reads it

    (delivery,) = await store.claim_deliveries(NODE, T0 + 5, T0 + 35, 10)
    assert await store.delivery_done(delivery.id, delivery.attempts, T0 + 6)
    assert await store.purge_unretained(TENANT, FN, T0 + 7, 100) == 1
    assert (await task(store)).result is None


async def test_purge_unretained_bounded_by_limit(store: Store) -> None:
    await deploy(store)
    for i in range(3):
        await ended(store, f"t{i}", S.SUCCEEDED, at=T0 + 2 + i)

    assert await store.purge_unretained(TENANT, FN, T0 + 9, 2) == 2
    assert await store.purge_unretained(TENANT, FN, T0 + 9, 2) == 1
