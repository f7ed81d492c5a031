"""The store's outbox (destination deliveries) and dead letters."""

from __future__ import annotations

from typing import Protocol

from asyncfn.domain.deadletters import DeadLetter, DeadLetterCursor
from asyncfn.domain.models import Delivery, Submitted


class OutboxStore(Protocol):
    """Destination deliveries and dead letters.

    Every terminal transition (TaskTransitions' finish, stop of a waiting task, expire, and
    FunctionStore's delete_function) inserts, in its own transaction, the deliveries its
    function's `async.on_success` / `async.on_failure` ask for (`domain.policies.destinations_for`);
    one that ends a task Failed or Expired also lists it as a dead letter when its function has
    `async.on_dead_letter` (domain/deadletters.py)."""

    # -- outbox: destination deliveries -------------------------------------------------------
    async def claim_deliveries(
        self, node: str, now: float, lease_until: float, limit: int
    ) -> list[Delivery]:
        """Pending deliveries due by `now` whose lease is free or expired, leased to `node`
        until `lease_until`, oldest due first; at most `limit`. Each claim counts an attempt
        (`Delivery.attempts` is the claimed attempt's number)."""

    async def delivery_done(self, delivery_id: str, attempt: int, now: float) -> bool:
        """Pending → delivered. False when the delivery is no longer pending on `attempt`
        (its lease expired and another claim took it over)."""

    async def delivery_failed(
        self, delivery_id: str, attempt: int, now: float, error: str, next_at: float | None
    ) -> bool:
        """Attempt `attempt` failed with `error`: retried at `next_at` (pending, lease
        released), or dead when `next_at` is None. False as for `delivery_done`."""

    async def task_deliveries(self, tenant: str, task_id: str) -> list[Delivery] | None:
        """The deliveries of a task, oldest first; None when the task does not exist."""

    # -- dead letters (domain/deadletters.py) -------------------------------------------------
    async def list_dead_letters(
        self,
        tenant: str,
        function: str | None,
        limit: int,
        after: DeadLetterCursor | None = None,
    ) -> tuple[list[DeadLetter], DeadLetterCursor | None]:
        """A page of the tenant's dead letters (of one function, or all), newest first, and
        the cursor of the next page (None after the last)."""

    async def rerun_dead_letter(
        self,
        tenant: str,
        task_id: str,
        new_task_id: str | None,
        now: float,
        max_attempts: int,
        default_priority: int,
    ) -> Submitted | None:
        """`rerun` of the dead letter `task_id`, with its entry marked (rerun_as, rerun_at) in
        the same transaction. None when the task is no dead letter; `AlreadyRerun` (naming the
        rerun) when the entry was rerun before."""
