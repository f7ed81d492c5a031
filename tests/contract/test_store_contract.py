"""The Store contract, part 1: a task's life — submit, claim, finish, retry, progress, checkpoint.

Runs once per store implementation (see conftest.py). Times are explicit POSIX seconds.
"""

from __future__ import annotations

import asyncio
import re

import pytest

from asyncfn.domain.errors import Unavailable
from asyncfn.domain.models import ClaimedTask, Submission, Submitted, Task, TaskKeys
from asyncfn.domain.outcomes import Resources
from asyncfn.domain.states import TaskStatus
from asyncfn.store.base import Finish, RetryLater, Store

S = TaskStatus
T0 = 1_700_000_000.0
TENANT = "acme"
FN = "resize"
LEASE_S = 30.0

pytestmark = pytest.mark.timeout(15)


async def submit(
    store: Store,
    *items: Submission,
    now: float = T0,
    function: str = FN,
    tenant: str = TENANT,
    max_attempts: int = 3,
    default_priority: int = 0,
) -> list[Submitted]:
    return await store.submit_many(tenant, function, items, now, max_attempts, default_priority)


async def claim(
    store: Store,
    limit: int = 10,
    now: float = T0 + 1,
    node: str = "node-a",
    function: str = FN,
    tenant: str = TENANT,
) -> list[ClaimedTask]:
    return list(await store.claim_ready(tenant, function, node, limit, now, now + LEASE_S))


async def task(store: Store, task_id: str, tenant: str = TENANT) -> Task:
    found = await store.get_task(tenant, task_id)
    assert found is not None, task_id
    return found


async def running_task(store: Store, task_id: str = "t1") -> ClaimedTask:
    await submit(store, Submission(b"in", task_id=task_id))
    (claimed,) = await claim(store)
    return claimed


# -- submit ------------------------------------------------------------------------------------


async def test_submitted_task_reads_back_enqueued_with_its_event(store: Store) -> None:
    (answer,) = await submit(store, Submission(b'{"src": "a.jpg"}', task_id="t1"))

    assert answer == Submitted("t1", S.ENQUEUED, True, answer.row)
    got = await task(store, "t1")
    assert (got.id, got.tenant, got.function, got.status) == ("t1", TENANT, FN, S.ENQUEUED)
    assert got.payload == b'{"src": "a.jpg"}'
    assert (got.attempt, got.max_attempts, got.priority) == (0, 3, 0)
    assert got.created_at == got.run_at == T0
    assert got.started_at is got.finished_at is got.result is got.error is None
    assert [(e.status, e.at, e.detail) for e in got.events] == [("Enqueued", T0, None)]
    assert got.attempts == ()


async def test_generated_ids_are_random_128_bit_hex(store: Store) -> None:
    answers = await submit(store, Submission(b"a"), Submission(b"b"))

    assert all(re.fullmatch(r"[0-9a-f]{32}", a.task_id) for a in answers)
    assert answers[0].task_id != answers[1].task_id
    assert all(a.created for a in answers)


async def test_mixed_batch_keeps_order_rows_and_dedup(store: Store) -> None:
    await submit(store, Submission(b"old", "given-b"))
    items = [
        Submission(b"0"),
        Submission(b"1", "given-a"),
        Submission(b"2"),
        Submission(b"3"),
        Submission(b"4", "given-a"),
        Submission(b"5", "given-b"),
        Submission(b"6"),
    ]
    out = await submit(store, *items)
    assert [o.created for o in out] == [True, True, True, True, False, False, True]
    created_rows = [o.row for o in out if o.created and o.row is not None]
    assert created_rows == sorted(created_rows)
    assert out[4].row == out[1].row
    assert out[5].status is S.ENQUEUED
    claimed = await claim(store, limit=10)
    assert [c.payload for c in claimed] == [b"old", b"0", b"1", b"2", b"3", b"6"]
    for answer, item in zip(out, items, strict=True):
        task = await store.get_task(TENANT, answer.task_id)
        assert task is not None and task.row == answer.row
        if answer.created:
            assert task.payload == item.payload


@pytest.mark.parametrize("binary", [False, True], ids=["utf8-payloads", "a-binary-payload"])
async def test_generated_run_stores_every_field_of_every_item(store: Store, binary: bool) -> None:
    # SQLite inserts a run of UTF-8 payloads from one JSON array and falls back to one row
    # per item when a payload is not UTF-8: both must store the same thing.
    odd = b"\xff\x00\xfe" if binary else "é ✓".encode()
    items = [
        Submission(b'{"n": 1}'),
        Submission(odd, priority=5, run_at=T0 + 30.25),
        Submission(b"", attributes={"type": "com.example.x"}),
        Submission(b"k", keys=TaskKeys(("a", "b"), debounce="d", throttle="t")),
    ]
    out = await submit(store, *items, default_priority=2)

    assert [o.created for o in out] == [True] * 4
    assert [o.row for o in out] == sorted({o.row for o in out})
    for answer, item in zip(out, items, strict=True):
        got = await task(store, answer.task_id)
        assert (got.row, got.payload, got.status) == (answer.row, item.payload, S.ENQUEUED)
        assert got.priority == (2 if item.priority is None else item.priority)
        assert got.run_at == (T0 if item.run_at is None else item.run_at)
        assert got.attributes == item.attributes
        assert got.keys == item.keys
        detail = None if item.run_at is None else {"run_at": item.run_at}
        assert [(e.status, e.at, e.detail) for e in got.events] == [("Enqueued", T0, detail)]


async def test_concurrent_callers_each_get_their_own_answers(store: Store) -> None:
    # SQLite merges concurrent submissions of a function into one insert: every caller must
    # still get its own tasks back, and a client-given id taken by an earlier caller is not
    # created twice.
    calls = [
        submit(store, Submission(b"%d" % i), Submission(b"same", task_id="shared"), now=T0 + i)
        for i in range(40)
    ]
    answers = await asyncio.gather(*calls)

    assert sum(a.created for _, a in answers) == 1
    assert len({a.row for _, a in answers}) == 1
    ids = [own.task_id for own, _ in answers]
    assert len(set(ids)) == 40
    for i, (own, _) in enumerate(answers):
        got = await task(store, own.task_id)
        assert own.created and got.row == own.row and got.payload == b"%d" % i
        assert T0 <= got.created_at <= T0 + 39


async def test_a_task_is_unknown_in_another_tenant(store: Store) -> None:
    await submit(store, Submission(b"a", task_id="t1"))

    assert await store.get_task("other", "t1") is None


async def test_taken_id_answers_the_existing_task_and_changes_nothing(store: Store) -> None:
    await submit(store, Submission(b"first", task_id="t1"))
    await claim(store)
    before = await task(store, "t1")

    (again,) = await submit(store, Submission(b"second", task_id="t1"), now=T0 + 5)

    assert again == Submitted("t1", S.RUNNING, False, before.row)
    assert await task(store, "t1") == before


async def test_same_id_in_another_tenant_is_a_new_task(store: Store) -> None:
    await submit(store, Submission(b"a", task_id="t1"))

    (other,) = await submit(store, Submission(b"b", task_id="t1"), tenant="other")

    assert other.created


async def test_duplicate_id_within_one_batch_is_reported_as_the_first(store: Store) -> None:
    first, second = await submit(
        store, Submission(b"first", task_id="t1"), Submission(b"second", task_id="t1")
    )

    assert first.created and not second.created
    assert (second.task_id, second.status, second.row) == ("t1", S.ENQUEUED, first.row)
    assert (await task(store, "t1")).payload == b"first"


async def test_priority_defaults_and_delay_are_recorded(store: Store) -> None:
    await submit(
        store,
        Submission(b"a", task_id="default"),
        Submission(b"b", task_id="urgent", priority=7),
        Submission(b"c", task_id="later", run_at=T0 + 60),
        default_priority=2,
    )

    assert (await task(store, "default")).priority == 2
    assert (await task(store, "urgent")).priority == 7
    later = await task(store, "later")
    assert later.run_at == T0 + 60
    assert later.events[0].detail == {"run_at": T0 + 60}


# -- claim -------------------------------------------------------------------------------------


async def test_claim_takes_highest_priority_then_oldest_and_respects_limit(store: Store) -> None:
    await submit(store, Submission(b"", task_id="low-old", priority=0))
    await submit(store, Submission(b"", task_id="high-new", priority=5), now=T0 + 0.2)
    await submit(store, Submission(b"", task_id="low-new", priority=0), now=T0 + 0.1)
    await submit(store, Submission(b"", task_id="high-old", priority=5))
    await submit(store, Submission(b"", task_id="low-newest", priority=0), now=T0 + 0.3)

    first = await claim(store, limit=3)
    rest = await claim(store, limit=3)

    assert [c.id for c in first] == ["high-old", "high-new", "low-old"]
    assert [c.id for c in rest] == ["low-new", "low-newest"]
    assert await claim(store) == []


async def test_same_priority_and_time_is_first_in_first_out(store: Store) -> None:
    ids = [f"t{i}" for i in range(5)]
    await submit(store, *(Submission(b"", task_id=i) for i in ids))

    assert [c.id for c in await claim(store)] == ids


async def test_delayed_high_priority_does_not_hide_due_lower_priority(store: Store) -> None:
    await submit(
        store,
        Submission(b"later-high", "later-high", run_at=T0 + 100, priority=9),
        Submission(b"due-low", "due-low", priority=-3),
        Submission(b"later-mid", "later-mid", run_at=T0 + 50, priority=0),
        Submission(b"due-mid", "due-mid", priority=0),
    )
    assert await store.next_run_at(TENANT, FN) == T0
    claimed = await claim(store, limit=10)
    assert [c.id for c in claimed] == ["due-mid", "due-low"]
    assert await store.next_run_at(TENANT, FN) == T0 + 50
    later = await claim(store, limit=10, now=T0 + 200)
    assert [c.id for c in later] == ["later-high", "later-mid"]
    assert await store.next_run_at(TENANT, FN) is None


async def test_delayed_task_is_not_claimed_before_run_at(store: Store) -> None:
    await submit(store, Submission(b"", task_id="later", run_at=T0 + 60))

    assert await claim(store, now=T0 + 59) == []
    assert await store.next_run_at(TENANT, FN) == T0 + 60
    assert [c.id for c in await claim(store, now=T0 + 60)] == ["later"]
    assert await store.next_run_at(TENANT, FN) is None


async def test_claim_is_scoped_to_tenant_and_function(store: Store) -> None:
    await submit(store, Submission(b"", task_id="mine"))
    await submit(store, Submission(b"", task_id="other-fn"), function="thumbnail")
    await submit(store, Submission(b"", task_id="other-tenant"), tenant="umbrella")

    assert [c.id for c in await claim(store)] == ["mine"]


async def test_claim_starts_an_attempt_with_event_and_attempt_row(store: Store) -> None:
    await submit(store, Submission(b"payload", task_id="t1"), max_attempts=4)

    (claimed,) = await claim(store, now=T0 + 2, node="node-b")

    assert (claimed.id, claimed.attempt, claimed.max_attempts) == ("t1", 1, 4)
    assert (claimed.payload, claimed.created_at, claimed.started_at) == (b"payload", T0, T0 + 2)
    assert claimed.checkpoint is None
    got = await task(store, "t1")
    assert (got.status, got.attempt, got.node, got.started_at) == (S.RUNNING, 1, "node-b", T0 + 2)
    assert got.events[-1].status == "Running"
    assert got.events[-1].detail == {"attempt": 1, "node": "node-b"}
    (attempt,) = got.attempts
    assert (attempt.number, attempt.started_at, attempt.node) == (1, T0 + 2, "node-b")
    assert (attempt.finished_at, attempt.outcome) == (None, None)


async def test_a_claimed_task_is_not_claimed_again(store: Store) -> None:
    await running_task(store)

    assert await claim(store, node="node-b") == []


# -- finish ------------------------------------------------------------------------------------


async def test_finish_records_result_attempt_and_event(store: Store) -> None:
    claimed = await running_task(store)

    done = Finish(
        claimed.row,
        1,
        S.SUCCEEDED,
        at=T0 + 3,
        result={"width": 640},
        duration_ms=1840.0,
        resources=Resources(cpu_ms=1710.0, max_rss_mb=88.0),
        detail={"instance_id": "inst-1"},
    )
    assert await store.finish([done]) == [True]

    got = await task(store, "t1")
    assert (got.status, got.finished_at, got.result) == (S.SUCCEEDED, T0 + 3, {"width": 640})
    assert (got.error, got.instance_id) == (None, "inst-1")
    assert got.events[-1].status == "Succeeded"
    assert got.events[-1].detail == {"instance_id": "inst-1", "duration_ms": 1840.0}
    (attempt,) = got.attempts
    assert (attempt.finished_at, attempt.outcome, attempt.instance_id) == (
        T0 + 3,
        "Succeeded",
        "inst-1",
    )
    assert (attempt.cpu_ms, attempt.max_rss_mb) == (1710.0, 88.0)
    assert await claim(store, now=T0 + 4) == []


async def test_failed_finish_keeps_the_error_on_task_and_attempt(store: Store) -> None:
    claimed = await running_task(store)
    error = {"type": "ValueError", "message": "bad", "traceback": "Traceback…"}

    assert await store.finish([Finish(claimed.row, 1, S.FAILED, T0 + 3, error=error)]) == [True]

    got = await task(store, "t1")
    assert (got.status, got.error, got.attempts[0].error) == (S.FAILED, error, error)
    assert got.attempts[0].outcome == "Failed"


async def test_finish_guard_refuses_wrong_attempt_and_changes_nothing(store: Store) -> None:
    claimed = await running_task(store)
    before = await task(store, "t1")

    answer = await store.finish([Finish(claimed.row, 2, S.SUCCEEDED, T0 + 3, result=1)])

    assert answer == [False]
    assert await task(store, "t1") == before


async def test_finish_guard_refuses_a_task_that_is_not_running(store: Store) -> None:
    (queued,) = await submit(store, Submission(b"", task_id="t1"))
    assert queued.row is not None
    before = await task(store, "t1")

    answer = await store.finish([Finish(queued.row, 0, S.SUCCEEDED, T0 + 3)])

    assert answer == [False]
    assert await task(store, "t1") == before


async def test_a_second_finish_of_the_same_attempt_is_refused(store: Store) -> None:
    claimed = await running_task(store)
    assert await store.finish([Finish(claimed.row, 1, S.SUCCEEDED, T0 + 3, result=1)]) == [True]
    before = await task(store, "t1")

    again = await store.finish([Finish(claimed.row, 1, S.FAILED, T0 + 4, error={"type": "X"})])

    assert again == [False]
    assert await task(store, "t1") == before


async def test_running_cannot_finish_as_stopped_without_stopping_first(store: Store) -> None:
    """TRANSITIONS has Running → Stopping → Stopped; finish's guard reads it."""
    claimed = await running_task(store)

    assert await store.finish([Finish(claimed.row, 1, S.STOPPED, T0 + 3)]) == [False]
    assert (await task(store, "t1")).status == S.RUNNING


async def test_finish_many_answers_each_item(store: Store) -> None:
    await submit(store, *(Submission(b"", task_id=f"t{i}") for i in range(3)))
    a, b, c = await claim(store)

    answers = await store.finish(
        [
            Finish(a.row, 1, S.SUCCEEDED, T0 + 3),
            Finish(b.row, 9, S.SUCCEEDED, T0 + 3),
            Finish(c.row, 1, S.FAILED, T0 + 3, error={"type": "E", "message": "m"}),
        ]
    )

    assert answers == [True, False, True]
    statuses = [(await task(store, t.id)).status for t in (a, b, c)]
    assert statuses == [S.SUCCEEDED, S.RUNNING, S.FAILED]


# -- retry -------------------------------------------------------------------------------------


async def test_retry_then_promote_then_claim_starts_attempt_two(store: Store) -> None:
    claimed = await running_task(store)
    error = {"type": "TimeoutError", "message": "took too long"}
    retry = RetryLater(claimed.row, 1, at=T0 + 3, run_at=T0 + 10, error=error, duration_ms=5.0)

    assert await store.retry_later([retry]) == [True]
    waiting = await task(store, "t1")
    assert (waiting.status, waiting.run_at, waiting.error) == (S.RETRYING, T0 + 10, error)
    assert waiting.events[-1].status == "Retrying"
    assert waiting.events[-1].detail == {
        "error": {"type": "TimeoutError", "message": "took too long"},
        "run_at": T0 + 10,
        "duration_ms": 5.0,
    }
    assert (waiting.attempts[0].outcome, waiting.attempts[0].error) == ("Retrying", error)
    assert await store.next_retry_at() == T0 + 10

    assert await store.promote_due(T0 + 9, limit=100) == []
    assert await store.promote_due(T0 + 10, limit=100) == [(TENANT, FN)]
    assert (await task(store, "t1")).status == S.ENQUEUED
    assert await store.next_retry_at() is None

    (again,) = await claim(store, now=T0 + 11)
    assert (again.id, again.attempt) == ("t1", 2)
    got = await task(store, "t1")
    assert [e.status for e in got.events] == [
        "Enqueued",
        "Running",
        "Retrying",
        "Enqueued",
        "Running",
    ]
    assert [(a.number, a.outcome) for a in got.attempts] == [(1, "Retrying"), (2, None)]


async def test_retry_guard_refuses_a_stale_attempt(store: Store) -> None:
    claimed = await running_task(store)
    before = await task(store, "t1")

    stale = RetryLater(claimed.row, 0, T0 + 3, T0 + 10, error={"type": "E", "message": "m"})

    assert await store.retry_later([stale]) == [False]
    assert await task(store, "t1") == before


async def test_promote_due_respects_its_limit_oldest_first(store: Store) -> None:
    await submit(store, *(Submission(b"", task_id=f"t{i}") for i in range(3)))
    claimed = await claim(store)
    error = {"type": "E", "message": "m"}
    await store.retry_later(
        [RetryLater(c.row, 1, T0 + 2, T0 + 5 - i, error) for i, c in enumerate(claimed)]
    )

    assert len(await store.promote_due(T0 + 10, limit=2)) == 2
    assert (await task(store, "t0")).status == S.RETRYING  # its run_at was the latest
    assert await store.promote_due(T0 + 10, limit=2) == [(TENANT, FN)]


# -- progress and checkpoints ------------------------------------------------------------------


async def test_checkpoint_survives_into_the_next_claim(store: Store) -> None:
    claimed = await running_task(store)
    assert await store.save_checkpoint(claimed.row, 1, {"frame": 1200, "parts": ["a", "b"]})
    await store.retry_later([RetryLater(claimed.row, 1, T0 + 3, T0 + 4, {"type": "E"})])
    await store.promote_due(T0 + 4, limit=10)

    (again,) = await claim(store, now=T0 + 5)

    assert again.checkpoint == {"frame": 1200, "parts": ["a", "b"]}
    assert (await task(store, "t1")).checkpoint == {"frame": 1200, "parts": ["a", "b"]}


async def test_progress_is_saved_on_the_running_task(store: Store) -> None:
    claimed = await running_task(store)

    assert await store.save_progress(claimed.row, 1, 0.5, "halfway")

    assert (await task(store, "t1")).progress == {"fraction": 0.5, "message": "halfway"}


async def test_progress_and_checkpoint_of_a_stale_attempt_are_refused(store: Store) -> None:
    claimed = await running_task(store)

    assert not await store.save_progress(claimed.row, 2, 0.5, None)
    assert not await store.save_checkpoint(claimed.row, 2, {"x": 1})
    got = await task(store, "t1")
    assert got.progress is got.checkpoint is None


# -- lifecycle ---------------------------------------------------------------------------------


async def test_open_and_close_are_idempotent_and_a_closed_store_refuses(store: Store) -> None:
    await store.open()
    await store.close()
    await store.close()

    with pytest.raises(Unavailable):
        await submit(store, Submission(b""))
    with pytest.raises(Unavailable):
        await store.get_task(TENANT, "t1")
