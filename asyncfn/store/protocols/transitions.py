"""The store's task transitions: submit, claim, finish, retry, control, expire, purge, and an
attempt's progress, checkpoint and logs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from asyncfn.domain.flow import Claim, ClaimQuota
from asyncfn.domain.models import Submission, Submitted
from asyncfn.store.records import Control, Finish, NewLogLine, PurgeResult, RetryLater
from asyncfn.store.shaping import Shaping


class TaskTransitions(Protocol):
    """The guarded writes of a task's life: one transaction each, a guard miss reported per item."""

    async def submit_many(
        self,
        tenant: str,
        function: str,
        submissions: Sequence[Submission],
        now: float,
        max_attempts: int,
        default_priority: int,
        *,
        shaping: Shaping | None = None,
    ) -> list[Submitted]:
        """New tasks → Enqueued, all in one transaction. An item whose task id is taken in the
        tenant comes back as the existing task (created False) and changes nothing.

        With `shaping` (the function's debounce and throttle; items carry their `keys`), a new
        task runs when `store.shaping.plan` says (its `Submitted.run_at`), and the waiting tasks
        of its debounce key end Stopped, superseded by it (no deliveries)."""

    async def claim_ready(
        self,
        tenant: str,
        function: str,
        node: str,
        limit: int,
        now: float,
        lease_until: float,
        created_after: float = 0.0,
        quota: ClaimQuota | None = None,
    ) -> Claim:
        """Enqueued tasks due by `now` and created after `created_after` (older ones are past
        their max event age: `expire` ends them) → Running on `node`, highest priority then
        oldest first; at most `limit`. Each claim starts a new attempt.

        Under `quota`, in the claim's transaction and serialized with every other claim under
        it across the cluster: at most `function_cap` minus the function's tasks holding an
        attempt (Running, Stopping, Suspended while running), `tenant_cap` minus the tenant's,
        and the whole tokens of the function's rate bucket (refilled to `now`; no bucket yet:
        a full one of `burst`), which loses one token per task claimed. `Claim.capped`: the
        quota bounded it; `Claim.retry_at`: when the bucket holds a token again, when it holds
        none. No quota (or an unlimited one) costs nothing beyond the claim."""

    async def finish(self, finishes: Sequence[Finish]) -> list[bool]:
        """A live attempt (that attempt: Running, Stopping, or Suspended while running) →
        terminal, from the statuses TRANSITIONS allows (so Running → Stopped is refused: a stop
        goes through Stopping, and a Stopping task ends only Stopped). Per item: False when the
        guard missed."""

    async def retry_later(self, retries: Sequence[RetryLater]) -> list[bool]:
        """A live attempt (that attempt) → Retrying, from the statuses TRANSITIONS allows.
        Per item: False when the guard missed."""

    async def promote_due(self, now: float, limit: int) -> list[tuple[str, str]]:
        """Retrying tasks due by `now` → Enqueued; answers the (tenant, function) of each."""

    async def renew_leases(self, node: str, rows: Sequence[int], until: float) -> int:
        """Extend the leases of `node`'s live attempts (Running, Stopping, Suspended while
        running); answers how many it still holds."""

    async def stop(
        self, tenant: str, task_id: str, now: float, detail: dict[str, Any] | None
    ) -> Control | None:
        """A user's stop. Enqueued, Retrying or Suspended-while-queued → Stopped at once (terminal);
        Running or Suspended-while-running → Stopping (the engine then ends the attempt and
        finishes it Stopped). None when no such task; `changed` False when it is already
        Stopping or terminal."""

    async def suspend(
        self, tenant: str, task_id: str, now: float, detail: dict[str, Any] | None
    ) -> Control | None:
        """Enqueued or Retrying → Suspended, held out of dispatch (the lease stays empty);
        Running → Suspended keeping its lease and node (the engine freezes the process). None
        when no such task; `changed` False when it is Suspended, Stopping or terminal."""

    async def resume(
        self, tenant: str, task_id: str, now: float, detail: dict[str, Any] | None
    ) -> Control | None:
        """Suspended with a lease (it was running) → Running; Suspended without one → Enqueued
        (it runs when its run_at is due). None when no such task; `changed` False when it is
        not Suspended."""

    async def expire(
        self, tenant: str, function: str, created_before: float, now: float, limit: int
    ) -> int:
        """Enqueued and Retrying tasks of a function created before `created_before` → Expired
        (past the max event age, never started again); answers how many, at most `limit`."""

    async def release_lost(
        self, row: int, attempt: int, now: float, detail: dict[str, Any]
    ) -> bool:
        """A task Suspended while running whose node is gone keeps Suspended but loses its lease,
        so a resume sends it back to the queue: its attempt closes as `NodeLost` and a
        Suspended event carries `detail`. False when the task is not Suspended holding a lease
        for `attempt`."""

    async def rerun(
        self,
        tenant: str,
        task_id: str,
        new_task_id: str | None,
        now: float,
        max_attempts: int,
        default_priority: int,
    ) -> Submitted | None:
        """A new Enqueued task of the same function with the payload of a terminal task, linked
        to it (`rerun_of`). None when no such task; `created` False when `new_task_id` is
        taken. Raises TransitionRefused when the original has not ended."""

    async def purge_finished(self, finished_before: float, limit: int) -> int:
        """Delete up to `limit` terminal tasks that finished before `finished_before`, with
        their events, attempts and logs (retention); answers how many."""

    async def forget_throttles(self, before: float, limit: int) -> int:
        """Delete up to `limit` throttle rows whose next slot is before `before` (a submission
        treats such a row as no row); answers how many."""

    async def purge_task(self, tenant: str, task_id: str, now: float) -> PurgeResult | None:
        """Erase an ended task's PURGED_FIELDS from the store's tables (its logs deleted), set
        `purged_at` and append an event (the task's status, detail `{"purged": [...]}`), in one
        transaction; its status, events and attempts stay. Purging again changes nothing but
        erases late log lines. None when no such task; raises TransitionRefused when the task
        has not ended (its attempt may still need the payload)."""

    async def purge_unretained(self, tenant: str, function: str, now: float, limit: int) -> int:
        """`purge_task` up to `limit` ended, not yet purged tasks of a function whose
        deliveries are settled (a pending delivery reads the task's result); answers how many.
        The janitor sweeps the functions with `retain_payload` false with it."""

    async def save_progress(
        self, row: int, attempt: int, fraction: float, message: str | None
    ) -> bool: ...

    async def save_checkpoint(self, row: int, attempt: int, checkpoint: Any) -> bool: ...

    async def append_logs(self, lines: Sequence[NewLogLine]) -> None: ...
