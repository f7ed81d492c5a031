"""Schedules (timer triggers) as pure data and arithmetic: the ticks of a cron expression or a
fixed interval, which ticks a runner fires under a catch-up policy, and each tick's task id.

Ticks are whole POSIX seconds. A cron expression is read in the schedule's IANA time zone (so a
DST change moves the ticks as a wall clock would); an interval of `every_s` ticks at the
multiples of `every_s` since the epoch. No I/O here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from asyncfn.domain import limits
from asyncfn.domain.errors import InvalidInput
from asyncfn.domain.models import DEFAULT_TENANT

CatchUp = Literal["none", "latest", "all"]
CATCH_UP_POLICIES: tuple[CatchUp, ...] = ("none", "latest", "all")
FIRE_MAX_PER_PASS = 1_000
"""At most this many ticks of one schedule are fired per pass (oldest first); the rest follow."""


@dataclass(frozen=True, slots=True)
class Schedule:
    """A schedule: exactly one of `cron` and `every_s`; `next_fire_at` is the earliest tick not
    yet fired or skipped (None while disabled)."""

    name: str
    function: str
    tenant: str = DEFAULT_TENANT
    cron: str | None = None
    every_s: int | None = None
    timezone: str = "UTC"
    payload: bytes = field(default=b"", repr=False)
    enabled: bool = True
    catch_up: CatchUp = "none"
    last_fire_at: float | None = None
    next_fire_at: float | None = None
    created_at: float = 0.0
    updated_at: float = 0.0


@dataclass(frozen=True, slots=True)
class FirePlan:
    """What one pass does with a due schedule: fire `ticks` (oldest first) and move the
    schedule's `next_fire_at` on to `next_fire_at`."""

    ticks: tuple[float, ...]
    next_fire_at: float


def validate(schedule: Schedule) -> None:
    """InvalidInput naming the field when the schedule cannot run."""
    if not limits.NAME_RE.match(schedule.name):
        raise InvalidInput(
            "a schedule name is 1 to 64 letters, digits, '-' or '_', starting with a letter",
            field="name",
        )
    if (schedule.cron is None) == (schedule.every_s is None):
        raise InvalidInput("give exactly one of cron and every_s", field="cron")
    if schedule.every_s is not None and schedule.every_s < 1:
        raise InvalidInput("every_s is at least 1", field="every_s")
    if schedule.cron is not None and not croniter.is_valid(schedule.cron):
        raise InvalidInput(f"invalid cron expression {schedule.cron!r}", field="cron")
    if schedule.catch_up not in CATCH_UP_POLICIES:
        raise InvalidInput("catch_up is one of none, latest, all", field="catch_up")
    zone(schedule.timezone)


def zone(name: str) -> ZoneInfo:
    """The IANA time zone `name`; InvalidInput (field `timezone`) when there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown time zone {name!r}", field="timezone") from None


def task_id(name: str, tick: float) -> str:
    """The dedup id of the task a tick submits: the same tick always makes the same task."""
    return f"sched-{name}-{int(tick)}"


def next_tick(schedule: Schedule, after: float) -> float:
    """The first tick strictly after `after`."""
    if schedule.every_s is not None:
        return float((math.floor(after / schedule.every_s) + 1) * schedule.every_s)
    start = datetime.fromtimestamp(after, UTC).astimezone(zone(schedule.timezone))
    found: datetime = croniter(_cron(schedule), start).get_next(datetime)
    return float(round(found.timestamp()))


def last_tick_before(schedule: Schedule, before: float) -> float:
    """The last tick strictly before `before`."""
    if schedule.every_s is not None:
        return float((math.ceil(before / schedule.every_s) - 1) * schedule.every_s)
    start = datetime.fromtimestamp(before, UTC).astimezone(zone(schedule.timezone))
    found: datetime = croniter(_cron(schedule), start).get_prev(datetime)
    tick = float(round(found.timestamp()))
    return tick if tick < before else last_tick_before(schedule, before - 1)


def first_tick(schedule: Schedule, now: float) -> float:
    """The first tick of a schedule created or changed at `now`: the next one after it."""
    return next_tick(schedule, now)


def plan(
    schedule: Schedule, now: float, online_since: float, limit: int = FIRE_MAX_PER_PASS
) -> FirePlan:
    """The ticks to fire at `now`, from `schedule.next_fire_at` on.

    Ticks before `online_since` (when this runner started) were missed while no node ran:
    `catch_up` decides them (`none` skips them, `latest` fires the most recent one, `all` fires
    each). Later ticks are only late and always fire. At most `limit` ticks, oldest first.
    """
    start = schedule.next_fire_at
    if start is None:
        raise ValueError(f"schedule {schedule.name!r} has no next tick (is it disabled?)")
    ticks: list[float] = []
    tick = start
    if tick < online_since and tick <= now:
        if schedule.catch_up == "all":
            while tick < online_since and tick <= now and len(ticks) < limit:
                ticks.append(tick)
                tick = next_tick(schedule, tick)
        else:
            latest = last_tick_before(schedule, min(online_since, math.floor(now) + 1))
            if schedule.catch_up == "latest" and latest >= start:
                ticks.append(latest)
            tick = next_tick(schedule, latest)
    while tick <= now and len(ticks) < limit:
        ticks.append(tick)
        tick = next_tick(schedule, tick)
    return FirePlan(tuple(ticks), tick)


def _cron(schedule: Schedule) -> str:
    if schedule.cron is None:
        raise ValueError(f"schedule {schedule.name!r} is not a cron schedule")
    return schedule.cron
