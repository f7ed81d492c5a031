"""The Store contract, part 8: flow control. A claim under a quota respects the running caps of
its function and tenant (tasks holding an attempt, Suspended-while-running ones included) and
the function's dispatch-rate bucket; tenants keep their quotas; `running_counts` reads them.

Runs once per store implementation (see conftest.py). Times are explicit POSIX seconds.
"""

from __future__ import annotations

import orjson
import pytest

from asyncfn.domain.flow import Claim, ClaimQuota
from asyncfn.domain.models import FunctionSpec, Submission
from asyncfn.domain.states import TaskStatus
from asyncfn.store.base import Finish, Store
from asyncfn.store.sqlite.rows import function_config, function_from_row

T0 = 1_700_000_000.0
LEASE_S = 30.0
TENANT = "acme"
FN = "resize"

pytestmark = pytest.mark.timeout(15)


async def submit(store: Store, count: int, function: str = FN, tenant: str = TENANT) -> None:
    items = [Submission(b"x", task_id=f"{function}-{i}") for i in range(count)]
    await store.submit_many(tenant, function, items, T0, 3, 0)


async def claim(
    store: Store,
    quota: ClaimQuota | None,
    limit: int = 10,
    now: float = T0 + 1,
    function: str = FN,
    tenant: str = TENANT,
) -> Claim:
    return await store.claim_ready(
        tenant, function, "node-a", limit, now, now + LEASE_S, 0.0, quota
    )


async def finish(store: Store, claimed: Claim, now: float = T0 + 2) -> None:
    done = await store.finish(
        [Finish(t.row, t.attempt, TaskStatus.SUCCEEDED, now) for t in claimed]
    )
    assert all(done)


async def test_a_function_cap_bounds_what_holds_an_attempt(store: Store) -> None:
    await submit(store, 12)
    quota = ClaimQuota(function_cap=3)

    first = await claim(store, quota)
    assert (len(first), first.capped, first.retry_at) == (3, True, None)
    again = await claim(store, quota)
    assert (len(again), again.capped) == (0, True)

    await finish(store, Claim(first.tasks[:1]))
    after = await claim(store, quota, now=T0 + 3)
    assert (len(after), after.capped) == (1, True)
    assert await store.running_counts() == {(TENANT, FN): 3}


async def test_a_cap_the_queue_stays_under_does_not_cap(store: Store) -> None:
    await submit(store, 2)
    got = await claim(store, ClaimQuota(function_cap=5), limit=2)
    assert (len(got), got.capped, got.retry_at) == (2, False, None)


async def test_a_tenant_cap_spans_the_tenants_functions(store: Store) -> None:
    await submit(store, 5, "a")
    await submit(store, 5, "b")
    await submit(store, 5, "a", tenant="other")
    quota = ClaimQuota(tenant_cap=4)

    a = await claim(store, quota, limit=3, function="a")
    assert (len(a), a.capped) == (3, False)
    b = await claim(store, quota, limit=3, function="b")
    assert (len(b), b.capped) == (1, True)
    assert len(await claim(store, quota, function="b")) == 0
    other = await claim(store, quota, function="a", tenant="other")
    assert len(other) == 4

    await finish(store, a)
    assert len(await claim(store, quota, function="b", now=T0 + 3)) == 3
    assert await store.running_counts() == {
        (TENANT, "b"): 4,
        ("other", "a"): 4,
    }


async def test_both_caps_apply_at_once(store: Store) -> None:
    await submit(store, 5, "a")
    await submit(store, 5, "b")
    assert len(await claim(store, ClaimQuota(function_cap=2, tenant_cap=3), function="a")) == 2
    got = await claim(store, ClaimQuota(function_cap=2, tenant_cap=3), function="b")
    assert (len(got), got.capped) == (1, True)


async def test_a_task_suspended_while_running_still_holds_its_attempt(store: Store) -> None:
    await submit(store, 5)
    quota = ClaimQuota(function_cap=2, tenant_cap=2)
    first = await claim(store, quota)
    assert len(first) == 2

    suspended = await store.suspend(TENANT, first[0].id, T0 + 2, None)
    assert suspended is not None and suspended.changed and suspended.live
    assert len(await claim(store, quota, now=T0 + 3)) == 0
    assert await store.running_counts() == {(TENANT, FN): 2}

    await finish(store, Claim(first.tasks[1:]), now=T0 + 4)
    assert len(await claim(store, quota, now=T0 + 5)) == 1


async def test_a_task_suspended_while_queued_holds_nothing(store: Store) -> None:
    await submit(store, 3)
    for task_id in (f"{FN}-0", f"{FN}-1"):
        held = await store.suspend(TENANT, task_id, T0 + 1, None)
        assert held is not None and held.changed and not held.live
    quota = ClaimQuota(function_cap=2, tenant_cap=2)

    got = await claim(store, quota, now=T0 + 2)
    assert [t.id for t in got] == [f"{FN}-2"]
    assert await store.running_counts() == {(TENANT, FN): 1}

    await store.resume(TENANT, f"{FN}-0", T0 + 3, None)
    assert [t.id for t in await claim(store, quota, now=T0 + 4)] == [f"{FN}-0"]
    assert len(await claim(store, quota, now=T0 + 5)) == 0


async def test_a_rate_bucket_starts_full_and_refills_with_time(store: Store) -> None:
    await submit(store, 20)
    quota = ClaimQuota(rate=10.0, burst=5)

    first = await claim(store, quota, now=T0)
    assert (len(first), first.capped) == (5, True)
    assert first.retry_at == pytest.approx(T0 + 0.1)
    second = await claim(store, quota, now=T0)
    assert (len(second), second.capped) == (0, True)
    assert second.retry_at == pytest.approx(T0 + 0.1)

    later = await claim(store, quota, now=T0 + 0.3)
    assert (len(later), later.capped) == (3, True)
    assert later.retry_at == pytest.approx(T0 + 0.4)
    # A claimer whose clock lags refills nothing: the bucket's time never moves back.
    assert len(await claim(store, quota, now=T0 + 0.1)) == 0
    assert len(await claim(store, quota, now=T0 + 10)) == 5


async def test_the_bucket_loses_only_what_was_claimed(store: Store) -> None:
    await submit(store, 10)
    quota = ClaimQuota(function_cap=2, rate=10.0, burst=5)

    first = await claim(store, quota, now=T0)
    assert (len(first), first.capped, first.retry_at) == (2, True, None)
    await finish(store, first, now=T0)
    second = await claim(store, quota, now=T0)
    assert (len(second), second.retry_at) == (2, None)
    await finish(store, second, now=T0)
    third = await claim(store, quota, now=T0)
    assert len(third) == 1
    assert third.retry_at == pytest.approx(T0 + 0.1)


async def test_a_rate_bucket_is_per_function(store: Store) -> None:
    await submit(store, 5, "a")
    await submit(store, 5, "b")
    quota = ClaimQuota(rate=1.0, burst=2)
    assert len(await claim(store, quota, function="a", now=T0)) == 2
    assert len(await claim(store, quota, function="b", now=T0)) == 2
    assert len(await claim(store, quota, function="a", now=T0)) == 0


async def test_an_empty_queue_keeps_the_tokens(store: Store) -> None:
    quota = ClaimQuota(rate=10.0, burst=5)
    got = await claim(store, quota, now=T0)
    assert (len(got), got.capped, got.retry_at) == (0, True, None)
    await submit(store, 10)
    assert len(await claim(store, quota, now=T0)) == 5


@pytest.mark.parametrize("quota", [None, ClaimQuota()])
async def test_without_a_quota_a_claim_is_what_it_was(
    store: Store, quota: ClaimQuota | None
) -> None:
    await submit(store, 12)
    got = await claim(store, quota)
    assert (len(got), got.capped, got.retry_at) == (10, False, None)
    assert [t.id for t in got] == [f"{FN}-{i}" for i in range(10)]
    assert len(await claim(store, quota, limit=0)) == 0
    assert await store.running_counts() == {(TENANT, FN): 10}


async def test_running_counts_are_empty_when_nothing_runs(store: Store) -> None:
    await submit(store, 3)
    assert await store.running_counts() == {}


async def test_tenant_limits_round_trip(store: Store) -> None:
    assert await store.create_tenant(TENANT, T0) is True
    fresh = await store.get_tenant(TENANT)
    assert fresh is not None
    assert (fresh.max_running, fresh.submit_rate, fresh.submit_burst) == (None, None, None)

    updated = await store.set_tenant_limits(TENANT, 10, 2.5, 20)
    assert updated is not None
    assert (updated.name, updated.created_at) == (TENANT, T0)
    assert (updated.max_running, updated.submit_rate, updated.submit_burst) == (10, 2.5, 20)
    assert await store.get_tenant(TENANT) == updated
    listed = {t.name: t for t in await store.list_tenants()}
    assert listed[TENANT] == updated

    cleared = await store.set_tenant_limits(TENANT, None, None, None)
    assert cleared is not None and (cleared.max_running, cleared.submit_rate) == (None, None)
    assert await store.set_tenant_limits("ghost", 1, None, None) is None
    assert await store.get_tenant("ghost") is None


async def test_the_default_tenant_takes_limits_too(store: Store) -> None:
    limited = await store.set_tenant_limits("default", 3, None, None)
    assert limited is not None and (limited.name, limited.max_running) == ("default", 3)
    assert await store.get_tenant("default") == limited
    assert [t.max_running for t in await store.list_tenants()] == [3]


async def test_function_flow_settings_round_trip(store: Store) -> None:
    spec = FunctionSpec(
        name=FN, tenant=TENANT, max_concurrency=4, rate_limit=2.5, rate_burst=6, created_at=T0
    )
    await store.put_function(spec)
    got = await store.get_function(TENANT, FN)
    assert got is not None
    assert (got.max_concurrency, got.rate_limit, got.rate_burst) == (4, 2.5, 6)


def test_a_function_stored_before_flow_control_reads_as_unlimited() -> None:
    """Both stores read a function's row with the same converter; an old config has none of the
    flow-control keys."""
    config = orjson.loads(function_config(FunctionSpec(name=FN, tenant=TENANT, handler="app:h")))
    for key in ("max_concurrency", "rate_limit", "rate_burst"):
        del config[key]
    row = (TENANT, FN, orjson.dumps(config).decode(), None, T0, T0, 0)
    spec = function_from_row(row)
    assert (spec.name, spec.handler) == (FN, "app:h")
    assert (spec.max_concurrency, spec.rate_limit, spec.rate_burst) == (None, None, None)
