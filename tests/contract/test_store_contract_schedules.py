"""The Store contract, part 4: schedules — CRUD, due schedules, and firing a tick (the task and
the bookkeeping in one transaction, the same tick twice making one task).

Runs once per store implementation (see conftest.py). Times are explicit POSIX seconds.
"""

from __future__ import annotations

import dataclasses

import pytest

from asyncfn.domain.models import Submission
from asyncfn.domain.schedules import Schedule, task_id
from asyncfn.domain.states import TaskStatus
from asyncfn.store.base import Store

T0 = 1_700_000_000.0
TENANT = "acme"

pytestmark = pytest.mark.timeout(15)


def every(name: str, seconds: int = 60, **fields: object) -> Schedule:
    base = Schedule(
        name,
        "resize",
        tenant=TENANT,
        every_s=seconds,
        payload=b'{"n": 1}',
        next_fire_at=T0 + seconds,
        updated_at=T0,
    )
    return dataclasses.replace(base, **fields)  # type: ignore[arg-type]


async def fire(store: Store, name: str, tick: float, following: float) -> object:
    sub = Submission(b"tick", task_id=task_id(name, tick))
    return await store.fire_schedule(TENANT, name, tick, following, sub, T0 + 100, 4, 2)


async def test_put_creates_then_replaces_keeping_created_at_and_last_fire(store: Store) -> None:
    assert await store.put_schedule(every("nightly")) is True
    await fire(store, "nightly", T0 + 60, T0 + 120)
    changed = every("nightly", 30, timezone="Europe/Berlin", next_fire_at=T0 + 90)
    assert await store.put_schedule(dataclasses.replace(changed, updated_at=T0 + 5)) is False
    got = await store.get_schedule(TENANT, "nightly")
    assert got is not None
    assert (got.every_s, got.timezone, got.next_fire_at) == (30, "Europe/Berlin", T0 + 90)
    assert (got.created_at, got.updated_at, got.last_fire_at) == (T0, T0 + 5, T0 + 60)
    assert got.payload == b'{"n": 1}'


async def test_get_list_delete(store: Store) -> None:
    await store.put_schedule(every("b"))
    await store.put_schedule(
        Schedule("a", "resize", tenant=TENANT, cron="*/5 * * * *", catch_up="all", updated_at=T0)
    )
    await store.put_schedule(dataclasses.replace(every("c"), tenant="other"))
    assert [s.name for s in await store.list_schedules(TENANT)] == ["a", "b"]
    a = await store.get_schedule(TENANT, "a")
    assert a is not None
    assert (a.cron, a.every_s, a.catch_up, a.enabled, a.next_fire_at) == (
        "*/5 * * * *",
        None,
        "all",
        True,
        None,
    )
    assert await store.delete_schedule(TENANT, "a") is True
    assert await store.delete_schedule(TENANT, "a") is False
    assert await store.get_schedule(TENANT, "a") is None
    assert await store.get_schedule(TENANT, "c") is None


async def test_due_schedules_are_enabled_and_due_earliest_first(store: Store) -> None:
    await store.put_schedule(every("late", next_fire_at=T0 + 50))
    await store.put_schedule(every("early", next_fire_at=T0 + 10))
    await store.put_schedule(every("future", next_fire_at=T0 + 500))
    await store.put_schedule(every("off", enabled=False, next_fire_at=T0 + 1))
    other = dataclasses.replace(every("elsewhere", next_fire_at=T0 + 20), tenant="other")
    await store.put_schedule(other)
    due = await store.due_schedules(T0 + 60, 10)
    assert [(s.tenant, s.name) for s in due] == [
        (TENANT, "early"),
        ("other", "elsewhere"),
        (TENANT, "late"),
    ]
    assert [s.name for s in await store.due_schedules(T0 + 60, 1)] == ["early"]
    assert await store.next_schedule_at() == T0 + 10


async def test_fire_submits_the_task_and_advances_bookkeeping(store: Store) -> None:
    await store.put_schedule(every("nightly"))
    answer = await fire(store, "nightly", T0 + 60, T0 + 120)
    assert answer is not None
    assert answer.created is True  # type: ignore[attr-defined]
    task = await store.get_task(TENANT, "sched-nightly-1700000060")
    assert task is not None
    assert (task.function, task.status, task.payload) == ("resize", TaskStatus.ENQUEUED, b"tick")
    assert (task.max_attempts, task.priority, task.created_at) == (4, 2, T0 + 100)
    got = await store.get_schedule(TENANT, "nightly")
    assert got is not None
    assert (got.last_fire_at, got.next_fire_at) == (T0 + 60, T0 + 120)
    assert await store.due_schedules(T0 + 119, 10) == []


async def test_firing_the_same_tick_twice_makes_one_task(store: Store) -> None:
    await store.put_schedule(every("nightly"))
    first = await fire(store, "nightly", T0 + 60, T0 + 120)
    await fire(store, "nightly", T0 + 120, T0 + 180)
    again = await fire(store, "nightly", T0 + 60, T0 + 120)  # a second runner, late
    assert again is not None
    assert again.created is False  # type: ignore[attr-defined]
    assert again.task_id == first.task_id  # type: ignore[attr-defined]
    got = await store.get_schedule(TENANT, "nightly")
    assert got is not None
    assert (got.last_fire_at, got.next_fire_at) == (T0 + 120, T0 + 180)  # never moved back
    counts = await store.count_by_status(TENANT, "resize")
    assert counts[TaskStatus.ENQUEUED] == 2
    assert sum(counts.values()) == 2


async def test_fire_of_a_missing_or_disabled_schedule_writes_nothing(store: Store) -> None:
    assert await fire(store, "ghost", T0 + 60, T0 + 120) is None
    await store.put_schedule(every("off", enabled=False, next_fire_at=None))
    assert await fire(store, "off", T0 + 60, T0 + 120) is None
    assert await store.get_task(TENANT, "sched-off-1700000060") is None
    assert await store.get_task(TENANT, "sched-ghost-1700000060") is None


async def test_skip_moves_next_fire_at_on_without_a_task(store: Store) -> None:
    await store.put_schedule(every("nightly"))
    assert await store.skip_schedule(TENANT, "nightly", T0 + 600) is True
    assert await store.skip_schedule(TENANT, "nightly", T0 + 120) is True  # never back
    got = await store.get_schedule(TENANT, "nightly")
    assert got is not None
    assert (got.last_fire_at, got.next_fire_at) == (None, T0 + 600)
    assert sum((await store.count_by_status(TENANT, "resize")).values()) == 0
    assert await store.skip_schedule(TENANT, "ghost", T0) is False


async def test_a_tick_whose_task_cannot_be_written_leaves_the_bookkeeping_alone(
    store: Store,
) -> None:
    """The task and the bookkeeping are one transaction: a failing insert undoes both."""
    await store.put_schedule(every("nightly"))
    broken = Submission(None, task_id="sched-nightly-1700000060")  # type: ignore[arg-type]
    with pytest.raises(Exception):  # noqa: B017 - each store raises its driver's error
        await store.fire_schedule(TENANT, "nightly", T0 + 60, T0 + 120, broken, T0, 4, 0)
    got = await store.get_schedule(TENANT, "nightly")
    assert got is not None
    assert (got.last_fire_at, got.next_fire_at) == (None, T0 + 60)
    assert await store.get_task(TENANT, "sched-nightly-1700000060") is None
