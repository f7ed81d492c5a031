"""The Store contract, shaping: debounce (a submission supersedes the waiting task of its key,
which ends Stopped; the survivor runs window_s after the latest, at most max_wait_s after the
first) and throttle (GCRA per key: over the rate, tasks are delayed in order, never refused).

Runs once per store implementation (see conftest.py). Times are explicit POSIX seconds.
"""

from __future__ import annotations

import itertools

import pytest

from asyncfn.domain.models import Debounce, Submission, Submitted, Task, TaskKeys, Throttle
from asyncfn.domain.states import TaskStatus
from asyncfn.store.base import Store
from asyncfn.store.shaping import Shaping

S = TaskStatus
T0 = 1_700_000_000.0
TENANT = "acme"
FN = "index"
DEBOUNCE = Shaping(debounce=Debounce("/doc", window_s=2.0, max_wait_s=5.0))
THROTTLE = Shaping(throttle=Throttle("tenant", per_s=4.0, burst=1))

pytestmark = pytest.mark.timeout(30)


def doc(key: str | None, payload: bytes = b"{}", task_id: str | None = None) -> Submission:
    return Submission(payload, task_id, keys=TaskKeys(debounce=key))


def rated(key: str, task_id: str | None = None, run_at: float | None = None) -> Submission:
    return Submission(b"{}", task_id, run_at, keys=TaskKeys(throttle=key))


async def submit(
    store: Store, items: list[Submission], now: float, shaping: Shaping = DEBOUNCE
) -> list[Submitted]:
    return await store.submit_many(TENANT, FN, items, now, 3, 0, shaping=shaping)


async def task(store: Store, task_id: str) -> Task:
    found = await store.get_task(TENANT, task_id)
    assert found is not None, task_id
    return found


async def test_a_later_submission_supersedes_the_waiting_task(store: Store) -> None:
    (first,) = await submit(store, [doc("d1", b"v1")], T0)
    (second,) = await submit(store, [doc("d1", b"v2")], T0 + 1)

    assert first.created and second.created
    assert first.run_at == T0 + 2 and second.run_at == T0 + 3
    old = await task(store, first.task_id)
    assert old.status == S.STOPPED
    assert old.events[-1].status == "Stopped"
    assert old.events[-1].detail == {
        "reason": "debounced",
        "superseded_by": second.task_id,
        "from": "Enqueued",
    }
    new = await task(store, second.task_id)
    assert new.status == S.ENQUEUED and new.run_at == T0 + 3 and new.payload == b"v2"
    assert new.events[0].detail == {
        "debounce": {"key": "d1", "superseded": first.task_id, "run_at": T0 + 3},
        "run_at": T0 + 3,
    }
    # Nothing is due before the survivor's run_at; then it alone is claimed.
    assert list(await store.claim_ready(TENANT, FN, "n", 10, T0 + 2.5, T0 + 60)) == []
    assert await store.next_run_at(TENANT, FN) == T0 + 3
    claimed = list(await store.claim_ready(TENANT, FN, "n", 10, T0 + 3, T0 + 60))
    assert [c.id for c in claimed] == [second.task_id]


async def test_one_batch_collapses_into_its_last_item(store: Store) -> None:
    items = [doc("d1", f"v{i}".encode()) for i in range(5)]
    answers = await submit(store, items, T0)

    assert all(a.created for a in answers)
    for earlier, later in itertools.pairwise(answers):
        stopped = await task(store, earlier.task_id)
        assert stopped.status == S.STOPPED
        assert stopped.events[-1].detail is not None
        assert stopped.events[-1].detail["superseded_by"] == later.task_id
    survivor = await task(store, answers[-1].task_id)
    assert survivor.status == S.ENQUEUED and survivor.payload == b"v4"
    assert survivor.run_at == T0 + 2
    counts = await store.count_by_status(TENANT, FN)
    assert counts.get(S.ENQUEUED) == 1 and counts.get(S.STOPPED) == 4


async def test_max_wait_bounds_the_run_of_collapses(store: Store) -> None:
    """Every second a new submission: the survivor runs at the first one's time + max_wait_s."""
    answers = [(await submit(store, [doc("d1")], T0 + i))[0] for i in range(5)]

    assert [a.run_at for a in answers] == [T0 + 2, T0 + 3, T0 + 4, T0 + 5, T0 + 5]
    claimed = list(await store.claim_ready(TENANT, FN, "n", 10, T0 + 5, T0 + 60))
    assert [c.id for c in claimed] == [answers[-1].task_id]
    # Once it ran, the next submission starts a new run of collapses.
    (fresh,) = await submit(store, [doc("d1")], T0 + 6)
    assert fresh.run_at == T0 + 8
    assert (await task(store, answers[-1].task_id)).status == S.RUNNING


async def test_an_explicit_later_run_at_wins(store: Store) -> None:
    item = Submission(b"{}", run_at=T0 + 60, keys=TaskKeys(debounce="d1"))
    (answer,) = await submit(store, [item], T0)
    assert answer.run_at == T0 + 60


async def test_keys_are_independent(store: Store) -> None:
    answers = await submit(store, [doc("a"), doc("b"), doc("a"), doc(None)], T0)

    statuses = [(await task(store, a.task_id)).status for a in answers]
    assert statuses == [S.STOPPED, S.ENQUEUED, S.ENQUEUED, S.ENQUEUED]
    assert answers[3].run_at == T0  # no key value: not debounced


async def test_a_taken_task_id_answers_the_task_and_collapses_nothing(store: Store) -> None:
    (first,) = await submit(store, [doc("d1", b"v1", task_id="t1")], T0)
    (again,) = await submit(store, [doc("d1", b"v2", task_id="t1")], T0 + 1)

    assert first.created and not again.created and again.task_id == "t1"
    kept = await task(store, "t1")
    assert kept.status == S.ENQUEUED and kept.payload == b"v1" and kept.run_at == T0 + 2
    # Repeated in one batch: the first holds the id, the repeat neither inserts nor supersedes.
    answers = await submit(store, [doc("d2", task_id="x"), doc("d2", task_id="x")], T0)
    assert [a.created for a in answers] == [True, False]
    assert (await task(store, "x")).status == S.ENQUEUED


async def test_throttle_delays_in_order_and_never_refuses(store: Store) -> None:
    answers = await submit(store, [rated("k", f"t{i}") for i in range(4)], T0, THROTTLE)

    assert all(a.created for a in answers)
    assert [a.run_at for a in answers] == [T0, T0 + 0.25, T0 + 0.5, T0 + 0.75]
    assert (await task(store, "t0")).events[0].detail is None
    delayed = await task(store, "t2")
    assert delayed.events[0].detail == {
        "throttled": {"key": "k", "delay_s": 0.5},
        "run_at": T0 + 0.5,
    }
    # The rate holds across calls: the next one queues behind the batch.
    (later,) = await submit(store, [rated("k")], T0 + 0.1, THROTTLE)
    assert later.run_at == T0 + 1.0
    # Another key has its own rate.
    (other,) = await submit(store, [rated("other")], T0 + 0.1, THROTTLE)
    assert other.run_at == T0 + 0.1
    # The claim starts them in order as they fall due.
    order: list[str] = []
    for at in (T0, T0 + 0.25, T0 + 0.5, T0 + 0.75):
        order += [c.id for c in await store.claim_ready(TENANT, FN, "n", 10, at, at + 60)]
    started = [order.index(f"t{i}") for i in range(4)]
    assert started == sorted(started)


async def test_throttle_burst_and_recovery(store: Store) -> None:
    shaping = Shaping(throttle=Throttle("tenant", per_s=2.0, burst=3))
    answers = await submit(store, [rated("k") for _ in range(5)], T0, shaping)
    assert [a.run_at for a in answers] == [T0, T0, T0, T0 + 0.5, T0 + 1.0]
    # After a quiet spell the bucket is full again.
    again = await submit(store, [rated("k") for _ in range(4)], T0 + 10, shaping)
    assert [a.run_at for a in again] == [T0 + 10, T0 + 10, T0 + 10, T0 + 10.5]


async def test_throttle_respects_an_explicit_run_at(store: Store) -> None:
    answers = await submit(store, [rated("k", run_at=T0 + 30), rated("k")], T0, THROTTLE)
    assert [a.run_at for a in answers] == [T0 + 30, T0 + 30.25]
    assert (await task(store, answers[0].task_id)).events[0].detail == {"run_at": T0 + 30}


async def test_debounce_with_throttle_keeps_one_slot_per_survivor(store: Store) -> None:
    shaping = Shaping(
        debounce=Debounce("/doc", window_s=1.0, max_wait_s=5.0),
        throttle=Throttle("tenant", per_s=1.0, burst=1),
    )
    keys = TaskKeys(debounce="d1", throttle="k")
    answers = await submit(store, [Submission(b"{}", keys=keys) for _ in range(10)], T0, shaping)
    # Ten collapsed submissions take one throttle slot, not ten.
    assert answers[-1].run_at == T0 + 1
    other = Submission(b"{}", keys=TaskKeys(debounce="d2", throttle="k"))
    (second,) = await submit(store, [other], T0, shaping)
    assert second.run_at == T0 + 2  # one second after the first key's slot at T0 + 1


async def test_forgetting_passed_throttle_rows_changes_no_delay(store: Store) -> None:
    # Keys k and m are throttled; k's next slot is T0 + 1, m's T0 + 30.25 (behind a late task).
    await submit(store, [rated("k") for _ in range(4)], T0, THROTTLE)
    await submit(store, [rated("m", run_at=T0 + 30)], T0, THROTTLE)

    assert await store.forget_throttles(T0 + 0.5, 100) == 0  # k's slot has not passed yet
    assert await store.forget_throttles(T0 + 2, 100) == 1  # k's has; m's not
    # A forgotten key throttles as a fresh one; the kept one keeps its place.
    (fresh,) = await submit(store, [rated("k")], T0 + 2, THROTTLE)
    assert fresh.run_at == T0 + 2
    (queued,) = await submit(store, [rated("m")], T0 + 2, THROTTLE)
    assert queued.run_at == T0 + 30.25
    assert await store.forget_throttles(T0 + 100, 1) == 1  # bounded by the limit
    assert await store.forget_throttles(T0 + 100, 100) == 1
