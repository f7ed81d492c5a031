"""Schedules as pure arithmetic: cron and interval ticks, catch-up plans, dedup ids."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from asyncfn.domain import limits
from asyncfn.domain.errors import InvalidInput
from asyncfn.domain.schedules import (
    Schedule,
    last_tick_before,
    next_tick,
    plan,
    task_id,
    validate,
)

BERLIN = ZoneInfo("Europe/Berlin")
T0 = 1_700_000_000.0  # a multiple of 10 and of 100


def at(*parts: int, zone: ZoneInfo = BERLIN) -> float:
    return datetime(*parts, tzinfo=zone).timestamp()


def every(seconds: int, **fields: object) -> Schedule:
    return Schedule("tick", "fn", every_s=seconds, **fields)


def test_cron_ticks_follow_the_wall_clock_of_the_time_zone() -> None:
    daily = Schedule("daily", "fn", cron="0 9 * * *", timezone="Europe/Berlin")
    assert next_tick(daily, at(2024, 1, 10, 12, 0)) == at(2024, 1, 11, 9, 0)
    assert next_tick(daily, at(2024, 7, 10, 8, 59)) == at(2024, 7, 10, 9, 0)
    utc = Schedule("daily", "fn", cron="0 9 * * *")
    assert next_tick(utc, at(2024, 1, 10, 12, 0)) - next_tick(daily, at(2024, 1, 10, 12, 0)) == 3600


def test_cron_across_the_spring_dst_change_in_berlin() -> None:
    # 2024-03-31 02:00 CET → 03:00 CEST: 02:30 never happens, the hour after 01:30 is 03:30.
    hourly = Schedule("h", "fn", cron="30 * * * *", timezone="Europe/Berlin")
    first = next_tick(hourly, at(2024, 3, 31, 1, 0))
    assert first == at(2024, 3, 31, 1, 30)
    second = next_tick(hourly, first)
    assert second == at(2024, 3, 31, 3, 30)
    assert second - first == 3600  # one real hour, not two
    # A daily 09:00 is 23 real hours after the previous one across the change.
    daily = Schedule("d", "fn", cron="0 9 * * *", timezone="Europe/Berlin")
    saturday = next_tick(daily, at(2024, 3, 30, 8, 0))
    assert next_tick(daily, saturday) - saturday == 23 * 3600


def test_cron_across_the_autumn_dst_change_in_berlin() -> None:
    daily = Schedule("d", "fn", cron="0 9 * * *", timezone="Europe/Berlin")
    saturday = next_tick(daily, at(2024, 10, 26, 8, 0))
    assert next_tick(daily, saturday) - saturday == 25 * 3600
    assert last_tick_before(daily, next_tick(daily, saturday)) == saturday


def test_interval_ticks_are_multiples_of_every_s() -> None:
    s = every(10)
    assert next_tick(s, T0) == T0 + 10
    assert next_tick(s, T0 - 0.5) == T0
    assert last_tick_before(s, T0) == T0 - 10
    assert last_tick_before(s, T0 + 0.5) == T0


def test_on_time_ticks_fire_whatever_the_policy() -> None:
    for policy in ("none", "latest", "all"):
        s = every(10, catch_up=policy, next_fire_at=T0)
        fired = plan(s, now=T0 + 0.2, online_since=T0 - 100)
        assert fired.ticks == (T0,)
        assert fired.next_fire_at == T0 + 10


def test_late_ticks_after_start_all_fire() -> None:
    s = every(10, next_fire_at=T0)
    fired = plan(s, now=T0 + 25, online_since=T0 - 1)
    assert fired.ticks == (T0, T0 + 10, T0 + 20)
    assert fired.next_fire_at == T0 + 30


def test_catch_up_none_skips_the_missed_ticks() -> None:
    s = every(10, catch_up="none", next_fire_at=T0)
    fired = plan(s, now=T0 + 55, online_since=T0 + 52)
    assert fired.ticks == ()
    assert fired.next_fire_at == T0 + 60


def test_catch_up_none_still_fires_ticks_after_the_start() -> None:
    s = every(10, catch_up="none", next_fire_at=T0)
    fired = plan(s, now=T0 + 61, online_since=T0 + 52)
    assert fired.ticks == (T0 + 60,)
    assert fired.next_fire_at == T0 + 70


def test_catch_up_latest_fires_the_most_recent_missed_tick() -> None:
    s = every(10, catch_up="latest", next_fire_at=T0)
    fired = plan(s, now=T0 + 55, online_since=T0 + 52)
    assert fired.ticks == (T0 + 50,)
    assert fired.next_fire_at == T0 + 60


def test_catch_up_all_fires_every_missed_tick_oldest_first() -> None:
    s = every(10, catch_up="all", next_fire_at=T0)
    fired = plan(s, now=T0 + 61, online_since=T0 + 52)
    assert fired.ticks == tuple(T0 + 10 * i for i in range(7))
    assert fired.next_fire_at == T0 + 70


def test_catch_up_all_is_bounded_per_pass_and_resumes() -> None:
    s = every(1, catch_up="all", next_fire_at=T0)
    first = plan(s, now=T0 + 5_000, online_since=T0 + 5_000, limit=1_000)
    assert len(first.ticks) == 1_000
    assert first.ticks[0] == T0 and first.ticks[-1] == T0 + 999
    assert first.next_fire_at == T0 + 1_000
    second = plan(
        every(1, catch_up="all", next_fire_at=first.next_fire_at),
        now=T0 + 5_000,
        online_since=T0 + 5_000,
    )
    assert second.ticks[0] == T0 + 1_000


def test_catch_up_none_over_a_long_outage_is_cheap_for_cron() -> None:
    s = Schedule("m", "fn", cron="* * * * *", next_fire_at=T0 - 400 * 86_400 + 20)
    fired = plan(s, now=T0 + 5, online_since=T0 + 1)
    assert fired.ticks == ()
    assert fired.next_fire_at == next_tick(s, T0)


def test_dedup_id_names_the_schedule_and_the_tick_in_whole_seconds() -> None:
    assert task_id("nightly", 1_700_000_060.0) == "sched-nightly-1700000060"
    longest = task_id("n" * 64, 4_102_444_800.0)
    assert limits.TASK_ID_RE.match(longest)


@pytest.mark.parametrize(
    ("schedule", "field"),
    [
        (Schedule("s", "fn"), "cron"),
        (Schedule("s", "fn", cron="* * * * *", every_s=5), "cron"),
        (Schedule("s", "fn", cron="61 * * * *"), "cron"),
        (Schedule("s", "fn", cron="not cron"), "cron"),
        (Schedule("s", "fn", every_s=0), "every_s"),
        (Schedule("s", "fn", every_s=5, timezone="Mars/Olympus"), "timezone"),
        (Schedule("1s", "fn", every_s=5), "name"),
    ],
)
def test_invalid_schedules_name_the_field(schedule: Schedule, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        validate(schedule)
    assert caught.value.field == field


def test_a_valid_schedule_passes() -> None:
    validate(Schedule("s", "fn", cron="*/5 * * * *", timezone="Europe/Berlin"))
    validate(Schedule("s", "fn", every_s=1))
