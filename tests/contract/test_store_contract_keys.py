"""The Store contract, concurrency keys (`FunctionSpec.concurrency`): a claim never runs more
tasks of a key value than its limit, takes turns across the first key's values, filters by the
second and third limits, ends tasks at a cancel_newest limit Stopped and reports the running
task a cancel_oldest limit replaces; tasks without keys are claimed as before.

Runs once per store implementation (see conftest.py). Times are explicit POSIX seconds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import pytest

from asyncfn.domain.flow import Claim, ClaimQuota
from asyncfn.domain.models import ConcurrencyLimit, ConcurrencyStrategy, Submission, TaskKeys
from asyncfn.domain.states import TaskStatus
from asyncfn.store.base import Finish, Store

S = TaskStatus
T0 = 1_700_000_000.0
TENANT = "acme"
FN = "resize"
NODE = "node-a"

pytestmark = pytest.mark.timeout(30)


def limits(*specs: tuple[str, int, ConcurrencyStrategy]) -> ClaimQuota:
    return ClaimQuota(keys=tuple(ConcurrencyLimit(k, n, s) for k, n, s in specs))


async def submit(store: Store, *keys: Sequence[str], prefix: str = "t") -> list[int]:
    """One task per item of `keys` (its concurrency key values), in order."""
    items = [
        Submission(b"{}", task_id=f"{prefix}{i}", keys=TaskKeys(concurrency=tuple(k)))
        for i, k in enumerate(keys)
    ]
    done = await store.submit_many(TENANT, FN, items, T0, 3, 0)
    return [s.row for s in done if s.row is not None]


async def claim(store: Store, count: int, quota: ClaimQuota, at: float = T0 + 1) -> Claim:
    return await store.claim_ready(TENANT, FN, NODE, count, at, at + 60, 0.0, quota)


async def values_of(store: Store, claimed: Claim, index: int = 0) -> list[str]:
    out = []
    for task in claimed:
        found = await store.get_task(TENANT, task.id)
        assert found is not None and found.keys is not None
        out.append(found.keys.concurrency[index])
    return out


async def end(store: Store, claimed: Claim, status: TaskStatus = S.SUCCEEDED) -> None:
    ends = [Finish(t.row, t.attempt, status, T0 + 2) for t in claimed]
    assert all(await store.finish(ends))


async def test_a_key_value_never_runs_more_than_its_limit(store: Store) -> None:
    quota = limits(("/customer_id", 2, "queue"))
    await submit(store, *[["big"]] * 6, *[["small"]] * 1)

    first = await claim(store, 10, quota)
    assert Counter(await values_of(store, first)) == {"big": 2, "small": 1}
    assert first.capped  # a limit held due tasks back: the dispatcher claims again later
    assert len(await claim(store, 10, quota)) == 0

    big = [t for t in first if (await values_of(store, Claim([t])))[0] == "big"]
    await end(store, Claim(big[:1]))
    again = await claim(store, 10, quota)
    assert await values_of(store, again) == ["big"]
    assert len(await claim(store, 10, quota)) == 0
    counts = await store.count_by_status(TENANT, FN)
    assert counts[S.RUNNING] == 3 and counts[S.ENQUEUED] == 3


async def test_values_take_turns_so_a_hot_value_cannot_starve_cold_ones(store: Store) -> None:
    quota = limits(("/customer_id", 1_000, "queue"))
    await submit(store, *[["hot"]] * 100, prefix="h")
    await submit(store, ["cold-1"], ["cold-2"], ["cold-3"], prefix="c")

    first = await claim(store, 4, quota)
    assert sorted(await values_of(store, first)) == ["cold-1", "cold-2", "cold-3", "hot"]

    # The next claims go on after the value served last: only the hot value waits now.
    await submit(store, ["cold-4"], prefix="late")
    second = await claim(store, 2, quota)
    assert sorted(await values_of(store, second)) == ["cold-4", "hot"]


async def test_a_claim_resumes_after_the_value_it_served_last(store: Store) -> None:
    quota = limits(("tenant", 1_000, "queue"))
    await submit(store, *[[v] for v in "abcdef" for _ in range(3)])
    served = []
    for _ in range(6):
        served += await values_of(store, await claim(store, 1, quota))
    assert served == list("abcdef")


async def test_the_second_and_third_limits_filter_too(store: Store) -> None:
    quota = limits(
        ("/customer_id", 10, "queue"), ("/region", 1, "queue"), ("header:X-Team", 2, "queue")
    )
    await submit(
        store,
        ["a", "eu", "red"],
        ["b", "eu", "red"],
        ["c", "us", "red"],
        ["d", "ap", "red"],
        ["e", "sa", "blue"],
    )
    claimed = await claim(store, 10, quota)
    regions = await values_of(store, claimed, 1)
    teams = await values_of(store, claimed, 2)
    assert len(set(regions)) == len(regions)  # one per region
    assert Counter(teams)["red"] == 2 and "blue" in teams
    assert len(claimed) == 3


async def test_cancel_newest_stops_a_task_whose_value_is_at_its_limit(store: Store) -> None:
    quota = limits(("/customer_id", 1, "cancel_newest"))
    await submit(store, ["acme"], ["acme"], ["other"])

    claimed = await claim(store, 5, quota)
    assert sorted(await values_of(store, claimed)) == ["acme", "other"]
    assert len(claimed.stopped) == 1

    stopped = await store.get_task(TENANT, "t1")
    assert stopped is not None and stopped.status is S.STOPPED
    assert stopped.finished_at is not None
    detail = stopped.events[-1].detail
    assert stopped.events[-1].status == S.STOPPED
    assert detail is not None
    assert {k: detail[k] for k in ("reason", "key", "value", "limit", "strategy")} == {
        "reason": "concurrency_key",
        "key": "/customer_id",
        "value": "acme",
        "limit": 1,
        "strategy": "cancel_newest",
    }
    assert claimed.stopped == (stopped.row,)


async def test_cancel_oldest_reports_the_oldest_running_task_once(store: Store) -> None:
    quota = limits(("/customer_id", 2, "cancel_oldest"))
    await submit(store, ["acme"], prefix="old")
    first = await claim(store, 1, quota, at=T0 + 1)
    await submit(store, ["acme"], prefix="mid")
    second = await claim(store, 1, quota, at=T0 + 2)
    assert [t.id for t in first] == ["old0"] and [t.id for t in second] == ["mid0"]

    await submit(store, ["acme"], prefix="new")
    held = await claim(store, 5, quota, at=T0 + 3)
    assert len(held) == 0 and held.capped
    (preempt,) = held.preempt
    assert preempt.task_id == "old0" and preempt.function == FN
    assert preempt.detail["replaced_by"] == "new0"
    assert preempt.detail["strategy"] == "cancel_oldest" and preempt.detail["value"] == "acme"

    # Once it is Stopping, no other task of the value is asked to stop.
    ctl = await store.stop(TENANT, "old0", T0 + 4, {"by": "test"})
    assert ctl is not None and ctl.status is S.STOPPING
    waiting = await claim(store, 5, quota, at=T0 + 5)
    assert len(waiting) == 0 and waiting.preempt == ()

    # When it has ended, the new task runs in its place.
    assert await store.finish([Finish(first[0].row, 1, S.STOPPED, T0 + 6)]) == [True]
    replaced = await claim(store, 5, quota, at=T0 + 7)
    assert [t.id for t in replaced] == ["new0"]


async def test_tasks_without_keys_are_claimed_as_before(store: Store) -> None:
    quota = limits(("/customer_id", 1, "queue"))
    await submit(store, ["acme"], ["acme"])
    plain = [Submission(b"{}", task_id=f"plain{i}") for i in range(3)]
    await store.submit_many(TENANT, FN, plain, T0, 3, 0)

    claimed = await claim(store, 10, quota)
    ids = sorted(t.id for t in claimed)
    assert ids == ["plain0", "plain1", "plain2", "t0"]
    found = await store.get_task(TENANT, "plain0")
    assert found is not None and found.keys is None

    # A claim without concurrency limits ignores the keys altogether.
    rest = await store.claim_ready(TENANT, FN, NODE, 10, T0 + 1, T0 + 61)
    assert [t.id for t in rest] == ["t1"]


async def test_a_task_reads_back_its_key_values(store: Store) -> None:
    keys = TaskKeys(concurrency=("acme", "eu"), debounce=None, throttle="acme")
    await store.submit_many(TENANT, FN, [Submission(b"{}", task_id="k", keys=keys)], T0, 3, 0)
    found = await store.get_task(TENANT, "k")
    assert found is not None and found.keys == keys


async def test_key_stats_show_the_busiest_values(store: Store) -> None:
    quota = limits(("/customer_id", 2, "queue"), ("/region", 100, "queue"))
    await submit(store, *[["hot", "eu"]] * 5, *[["warm", "eu"]] * 2, ["cold", "us"], prefix="s")
    await claim(store, 10, quota)
    (first, second) = await store.key_stats(TENANT, FN, quota.keys)
    assert first.limit == quota.keys[0] and second.limit == quota.keys[1]
    assert [(v.value, v.running, v.waiting) for v in first.busiest] == [
        ("hot", 2, 3),
        ("warm", 2, 0),
        ("cold", 1, 0),
    ]
    assert [(v.value, v.running + v.waiting) for v in second.busiest] == [("eu", 7), ("us", 1)]
    assert len(await store.key_stats(TENANT, FN, quota.keys, top=1)) == 2
    (top_one, _) = await store.key_stats(TENANT, FN, quota.keys, top=1)
    assert [v.value for v in top_one.busiest] == ["hot"]
