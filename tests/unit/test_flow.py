"""Flow control arithmetic: token buckets, the quota a claim may take, and deficit round robin
sharing scarce room fairly (a flood never starves a trickle, weights hold over many rounds)."""

from __future__ import annotations

from collections import Counter

import pytest

from asyncfn.domain.flow import (
    ClaimQuota,
    DeficitRoundRobin,
    FairShare,
    TokenBucket,
    allowed_by_quota,
    burst_of,
    refill,
)


def test_bucket_starts_full_and_refills_at_its_rate() -> None:
    bucket = TokenBucket(rate=10.0, burst=5.0)
    assert bucket.take(8, now=100.0) == 5
    assert bucket.take(1, now=100.0) == 0
    assert bucket.wait_s(100.0) == pytest.approx(0.1)
    assert bucket.take(10, now=100.35) == 3
    assert bucket.take(10, now=1000.0) == 5  # capped at the burst however long it rested


def test_take_all_is_all_or_nothing_and_a_large_batch_leaves_debt() -> None:
    bucket = TokenBucket(rate=2.0, burst=3.0)
    assert bucket.take_all(2, now=0.0) == 0.0
    wait = bucket.take_all(2, now=0.0)
    assert wait == pytest.approx(0.5)  # one token held, two needed
    assert bucket.tokens == pytest.approx(1.0)  # nothing taken by the refusal
    assert bucket.take_all(10, now=1.0) == 0.0  # a full bucket admits a batch beyond it
    assert bucket.tokens == pytest.approx(-7.0)
    assert bucket.take_all(1, now=1.0) == pytest.approx(4.0)


def test_retune_keeps_tokens_within_the_new_size() -> None:
    bucket = TokenBucket(rate=100.0, burst=100.0)
    bucket.retune(1.0, 2.0)
    assert bucket.take(5, now=0.0) == 2


def test_burst_defaults_to_one_seconds_worth_and_refill_caps() -> None:
    assert burst_of(0.2, None) == 1.0
    assert burst_of(50.0, None) == 50.0
    assert burst_of(50.0, 7) == 7.0
    assert refill(0.0, 10.0, 9.0, 5.0, 3.0) == 0.0  # a clock going back adds nothing
    assert refill(1.0, 0.0, 10.0, 5.0, 3.0) == 3.0


def test_allowed_by_quota_takes_the_tightest_limit() -> None:
    quota = ClaimQuota(function_cap=5, tenant_cap=8, rate=10.0, burst=3.0)
    assert allowed_by_quota(10, quota, function_running=1, tenant_running=2, tokens=2.7) == (
        2,
        True,
    )
    assert allowed_by_quota(10, quota, function_running=4, tenant_running=2, tokens=3.0) == (
        1,
        True,
    )
    assert allowed_by_quota(10, quota, function_running=0, tenant_running=9, tokens=3.0) == (
        0,
        True,
    )
    assert allowed_by_quota(1, quota, function_running=0, tenant_running=0, tokens=3.0) == (
        1,
        False,
    )
    assert ClaimQuota().unlimited and not quota.unlimited


def test_drr_gives_everything_when_room_suffices() -> None:
    drr: DeficitRoundRobin[str] = DeficitRoundRobin()
    assert drr.allocate({"a": 3, "b": 0, "c": 2}, 10) == {"a": 3, "c": 2}


def test_drr_alternates_one_slot_between_a_flood_and_a_trickle() -> None:
    drr: DeficitRoundRobin[str] = DeficitRoundRobin()
    served = Counter[str]()
    for _ in range(100):
        for key, count in drr.allocate({"flood": 10_000, "trickle": 1}, 1).items():
            served[key] += count
    assert served == {"flood": 50, "trickle": 50}


def test_drr_splits_by_weight_over_many_rounds() -> None:
    drr: DeficitRoundRobin[str] = DeficitRoundRobin()
    served = Counter[str]()
    for _ in range(300):
        granted = drr.allocate({"a": 100, "b": 100, "c": 100}, 4, {"a": 2.0, "b": 1.0, "c": 1.0})
        assert sum(granted.values()) == 4
        served.update(granted)
    assert served["a"] == pytest.approx(600, rel=0.02)
    assert served["b"] == pytest.approx(300, rel=0.02)
    assert served["c"] == pytest.approx(300, rel=0.02)


def test_drr_never_grants_beyond_demand_or_room() -> None:
    drr: DeficitRoundRobin[str] = DeficitRoundRobin()
    granted = drr.allocate({"a": 1, "b": 5}, 4)
    assert granted == {"a": 1, "b": 3}
    assert drr.allocate({"a": 0, "b": 0}, 4) == {}


def test_fair_share_splits_between_tenants_before_functions() -> None:
    share = FairShare()
    served = Counter[tuple[str, str]]()
    demand = {("big", f"f{i}"): 1_000 for i in range(10)}
    demand[("small", "only")] = 1_000
    for _ in range(200):
        granted = share.allocate(demand, 2)
        assert sum(granted.values()) == 2
        served.update(granted)
    assert served[("small", "only")] == 200  # half the room: one tenant of two
    big = [served[("big", f"f{i}")] for i in range(10)]
    assert sum(big) == 200 and max(big) - min(big) <= 1
