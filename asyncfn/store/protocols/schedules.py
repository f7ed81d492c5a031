"""The store's schedules: their configs, which are due, and firing a tick."""

from __future__ import annotations

from typing import Protocol

from asyncfn.domain.models import Submission, Submitted
from asyncfn.domain.schedules import Schedule


class ScheduleStore(Protocol):
    """Schedules: their configs, the due ones, and firing a tick (its task and the bookkeeping
    in one transaction)."""

    async def put_schedule(self, schedule: Schedule) -> bool:
        """Create or replace a schedule's config and `next_fire_at` (its `created_at` and
        `last_fire_at` are kept when it exists); True when created."""

    async def get_schedule(self, tenant: str, name: str) -> Schedule | None: ...

    async def list_schedules(self, tenant: str) -> list[Schedule]:
        """The schedules of `tenant`, by name."""

    async def delete_schedule(self, tenant: str, name: str) -> bool:
        """False when there was no such schedule. Tasks it submitted stay."""

    async def due_schedules(self, now: float, limit: int) -> list[Schedule]:
        """Enabled schedules of every tenant whose `next_fire_at` is due by `now`, earliest
        first; at most `limit`."""

    async def next_schedule_at(self) -> float | None:
        """The earliest `next_fire_at` of an enabled schedule; None when there is none."""

    async def fire_schedule(
        self,
        tenant: str,
        name: str,
        tick: float,
        next_fire_at: float,
        submission: Submission,
        now: float,
        max_attempts: int,
        default_priority: int,
    ) -> Submitted | None:
        """One tick, in one transaction: the task of the schedule's function (inserted as
        `submit_many` inserts a client-given id, so firing the same tick twice makes one task:
        the second answers it with created False) and the bookkeeping (`last_fire_at` becomes
        at least `tick`, `next_fire_at` at least `next_fire_at`). None, writing nothing, when
        the schedule no longer exists or is disabled."""

    async def skip_schedule(self, tenant: str, name: str, next_fire_at: float) -> bool:
        """Move an enabled schedule's `next_fire_at` on without firing (missed ticks under
        `catch_up` none or latest, a missing function); False when it is gone or disabled."""
