"""The `Store` protocol: one method per task transition, each guarded, plus the reads.

Every transition is one transaction that updates the task row and appends its event; a guard
miss is reported per item (False / absent), never silently applied. Times are POSIX seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from asyncfn.domain.deadletters import DeadLetter, DeadLetterCursor
from asyncfn.domain.flow import Claim, ClaimQuota
from asyncfn.domain.keystats import KeyStats
from asyncfn.domain.models import (
    ConcurrencyLimit,
    Delivery,
    FunctionSpec,
    LogLine,
    Submission,
    Submitted,
    Task,
    TaskQuery,
)
from asyncfn.domain.operations import MatchedTask, Operation, OperationKind, TaskFilter
from asyncfn.domain.outcomes import Resources
from asyncfn.domain.placement import NodeRecord
from asyncfn.domain.schedules import Schedule
from asyncfn.domain.states import TaskStatus
from asyncfn.domain.stats import RECENT_ENDED, FunctionStats, QueueStat
from asyncfn.domain.tenants import ApiKey, SigningKey, Tenant
from asyncfn.domain.triggers import Trigger
from asyncfn.store.shaping import Shaping


@dataclass(frozen=True, slots=True)
class Finish:
    """The end of attempt `attempt` of `row` in a terminal status (Succeeded, Failed, Stopped)."""

    row: int
    attempt: int
    status: TaskStatus
    at: float
    result: Any = None
    error: dict[str, Any] | None = None
    duration_ms: float | None = None
    resources: Resources | None = None
    detail: dict[str, Any] | None = None
    instance_started_at: float | None = None


@dataclass(frozen=True, slots=True)
class RetryLater:
    """The end of a failed attempt: → Retrying until `run_at`, keeping its error."""

    row: int
    attempt: int
    at: float
    run_at: float
    error: dict[str, Any]
    duration_ms: float | None = None
    resources: Resources | None = None
    detail: dict[str, Any] | None = None
    instance_started_at: float | None = None


@dataclass(frozen=True, slots=True)
class LostTask:
    """A task holding a lease (Running, Stopping, or Suspended while running) whose node is gone
    (its lease expired, or the node restarted)."""

    row: int
    id: str
    tenant: str
    function: str
    status: TaskStatus
    attempt: int
    max_attempts: int
    node: str | None
    started_at: float | None


@dataclass(frozen=True, slots=True)
class Control:
    """The answer of a control transition (stop, suspend, resume) on one task.

    `status` is the task's status after the call; `changed` False means the transition was
    refused (the task was already past it) and nothing was written. `node` and `attempt` say
    where the live attempt runs, when there is one (`live`), so the engine can signal it."""

    row: int
    id: str
    function: str
    previous: TaskStatus
    status: TaskStatus
    changed: bool
    live: bool
    node: str | None
    attempt: int


@dataclass(frozen=True, slots=True)
class NewLogLine:
    row: int
    at: float
    stream: str
    line: str


PURGED_FIELDS = ("payload", "result", "checkpoint", "error.traceback", "progress.message", "logs")
"""What a purge erases from an ended task (its status, times, events, attempts' timings and
its error's type and message stay: the state history)."""


@dataclass(frozen=True, slots=True)
class PurgeResult:
    """The answer of `purge_task`: when the task's data was first purged and what was erased.
    `changed` False: it had been purged already (purging again erases any late log line)."""

    task_id: str
    purged_at: float
    purged: tuple[str, ...]
    changed: bool


class Store(Protocol):
    """What the engine and the API may ask of the shared state; each store implements it."""

    async def open(self) -> None:
        """Apply pending migrations and start serving; idempotent."""

    async def close(self) -> None:
        """Flush pending writes and release connections; idempotent."""

    # -- functions and code ------------------------------------------------------------------
    async def put_function(self, spec: FunctionSpec) -> bool:
        """Create or replace a function's config (its code hash is kept); True when created."""

    async def get_function(self, tenant: str, name: str) -> FunctionSpec | None: ...

    async def list_functions(self, tenant: str | None = None) -> list[FunctionSpec]:
        """Functions of `tenant`, or of every tenant when None, by name."""

    async def delete_function(self, tenant: str, name: str, now: float) -> int | None:
        """Delete a function; its waiting tasks become Invalid. None when it did not exist,
        else how many tasks were invalidated."""

    async def put_code(self, data: bytes, now: float) -> str:
        """Store a code zip by content; answers its sha256 (storing it twice is a no-op)."""

    async def get_code(self, sha256: str) -> bytes | None: ...

    async def set_function_code(
        self, tenant: str, name: str, sha256: str, now: float
    ) -> FunctionSpec | None:
        """Point a function at stored code; None when the function does not exist."""

    # -- transitions -------------------------------------------------------------------------
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

    async def set_function_paused(
        self, tenant: str, name: str, paused: bool, now: float
    ) -> FunctionSpec | None:
        """Pause or resume a whole function's queue (`FunctionSpec.paused`); None when the
        function does not exist. A paused function's tasks are accepted but not dispatched."""

    async def save_progress(
        self, row: int, attempt: int, fraction: float, message: str | None
    ) -> bool: ...

    async def save_checkpoint(self, row: int, attempt: int, checkpoint: Any) -> bool: ...

    async def append_logs(self, lines: Sequence[NewLogLine]) -> None: ...

    # -- outbox: destination deliveries -------------------------------------------------------
    # Every terminal transition above (finish, stop of a waiting task, expire, delete_function)
    # inserts, in its own transaction, the deliveries its function's `async.on_success` /
    # `async.on_failure` ask for (`domain.policies.destinations_for`).

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
    # Every terminal transition that ends a task Failed or Expired lists it, in its own
    # transaction (with the outbox), when its function has `async.on_dead_letter`.

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

    # -- reads -------------------------------------------------------------------------------
    async def get_task(self, tenant: str, task_id: str) -> Task | None:
        """The task with its events, attempts and deliveries."""

    async def list_tasks(self, query: TaskQuery) -> tuple[list[Task], int | None]:
        """A page of tasks (without events), newest first, and the cursor of the next page."""

    async def read_logs(
        self, tenant: str, task_id: str, after: int = 0, limit: int = 10_000
    ) -> list[LogLine] | None:
        """Log lines of a task after sequence `after`; None when the task does not exist."""

    async def find_lost(self, node: str | None, now: float, limit: int) -> list[LostTask]:
        """Tasks holding a lease (Running, Stopping, Suspended while running) whose lease
        expired by `now`, plus, when `node` is given, every such task of `node` (used when a
        node restarts: its instances died with it). Each says its `status`."""

    async def next_run_at(self, tenant: str, function: str) -> float | None:
        """When the earliest Enqueued task of a function becomes due; None when none waits."""

    async def next_retry_at(self) -> float | None:
        """When the earliest Retrying task becomes due; None when none waits."""

    async def count_by_status(self, tenant: str, function: str) -> dict[TaskStatus, int]: ...

    async def queue_stats(self) -> list[QueueStat]:
        """Per (tenant, function) with waiting tasks: how many are Enqueued or Retrying (due or
        not) and the oldest one's `created_at`. Cheap enough to read on every metrics scrape."""

    async def running_counts(self) -> dict[tuple[str, str], int]:
        """Per (tenant, function) with any: its tasks holding an attempt (Running, Stopping,
        Suspended while running), on every node. As cheap as `queue_stats`."""

    async def function_stats(
        self, tenant: str, function: str, now: float, recent: int = RECENT_ENDED
    ) -> FunctionStats:
        """Counts by status (every status), and over the function's `recent` latest ended
        tasks: queue waits, attempt durations, end-to-end times, CPU summed over their attempts
        and the peak RSS; plus how many of its tasks ended in the minute before `now`."""

    async def key_stats(
        self, tenant: str, function: str, limits: Sequence[ConcurrencyLimit], top: int = 10
    ) -> list[KeyStats]:
        """Per limit of the function's `concurrency`, its `top` values with the most running
        plus waiting (Enqueued) tasks. Bounded: waiting tasks are counted over at most
        `domain.keystats.WAITING_SCAN` of the queue."""

    # -- schedules ---------------------------------------------------------------------------
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

    # -- triggers ----------------------------------------------------------------------------
    async def put_trigger(self, trigger: Trigger) -> bool:
        """Create or replace a trigger's config (its `created_at` is kept); True when created."""

    async def get_trigger(self, tenant: str, name: str) -> Trigger | None: ...

    async def list_triggers(self, tenant: str | None = None) -> list[Trigger]:
        """The triggers of `tenant`, or of every tenant when None, by tenant then name."""

    async def delete_trigger(self, tenant: str, name: str) -> bool:
        """False when there was no such trigger. Tasks it submitted stay."""

    async def queue_depth(self, tenant: str, function: str) -> int:
        """How many tasks of a function wait (Enqueued or Retrying, due or not)."""

    # -- bulk operations (domain/operations.py) ----------------------------------------------
    async def count_operation_tasks(
        self, tenant: str, kind: OperationKind, filter: TaskFilter, now: float
    ) -> int:
        """How many tasks of `tenant` match `filter` that `kind` acts on now (a dry run)."""

    async def create_operation(
        self, op_id: str, tenant: str, kind: OperationKind, filter: TaskFilter, now: float
    ) -> Operation:
        """A running operation bounded by the newest task row now, its `total` counted up to
        that row (off the writer: a big count never holds up submissions)."""

    async def get_operation(self, tenant: str, op_id: str) -> Operation | None: ...

    async def list_operations(self, tenant: str, limit: int) -> list[Operation]:
        """`tenant`'s operations, newest first."""

    async def claim_operation(self, node: str, now: float, lease_until: float) -> Operation | None:
        """Take (or renew) the oldest running operation that `node` owns or whose owner's lease
        lapsed; None when there is none."""

    async def operation_batch(self, op: Operation, limit: int) -> list[MatchedTask]:
        """Up to `limit` tasks `op` matches and acts on now, past its cursor up to its
        `max_row`, by row."""

    async def save_operation(
        self,
        op_id: str,
        node: str,
        done: int,
        skipped: int,
        cursor: int | None,
        now: float,
        lease_until: float,
    ) -> bool:
        """Progress after a batch, renewing `node`'s lease; False when `node` no longer owns
        the running operation (another took it over, or it ended)."""

    async def end_operation(
        self,
        op_id: str,
        node: str,
        status: str,
        done: int,
        skipped: int,
        cursor: int | None,
        error: str | None,
        now: float,
    ) -> bool:
        """The operation's end (succeeded or failed); False when `node` does not own it."""

    async def stop_waiting(
        self, tenant: str, task_ids: Sequence[str], now: float, detail: dict[str, Any] | None
    ) -> list[Control]:
        """`stop` of many tasks in one transaction, for the waiting ones only (→ Stopped); a
        task holding a lease is answered unchanged (`live`), for the engine to stop one by one.
        Tasks not found are left out."""

    # -- tenants, API keys, secrets ----------------------------------------------------------
    async def create_tenant(self, name: str, now: float) -> bool:
        """False when the tenant exists already (nothing changes). `default` always exists."""

    async def list_tenants(self) -> list[Tenant]:
        """Every tenant, by name."""

    async def get_tenant(self, name: str) -> Tenant | None:
        """The tenant with its quotas."""

    async def set_tenant_limits(
        self,
        name: str,
        max_running: int | None,
        submit_rate: float | None,
        submit_burst: int | None,
    ) -> Tenant | None:
        """Replace a tenant's quotas (None: unlimited); answers the tenant, or None when there
        is no such tenant (`default` always exists)."""

    async def create_key(self, key: ApiKey) -> None:
        """Store a new key (its hash; ids and hashes are unique)."""

    async def find_key(self, hash_: str) -> ApiKey | None:
        """The key whose hash is `hash_`, revoked or not."""

    async def list_keys(self, tenant: str | None = None) -> list[ApiKey]:
        """The keys of `tenant` (every tenant's when None), revoked ones too, oldest first."""

    async def revoke_key(self, key_id: str, now: float) -> bool | None:
        """Revoke a key; None when there is no such key, False when it was revoked already."""

    async def count_active_keys(self) -> int: ...

    # The cloud APIs' signing keys: their secrets come sealed by `engine.sealing`.
    async def create_signing_key(self, key: SigningKey) -> None: ...

    async def find_signing_key(self, key_id: str) -> SigningKey | None:
        """The key with access key id `key_id`, revoked or not."""

    async def list_signing_keys(self, tenant: str | None = None) -> list[SigningKey]:
        """The signing keys of `tenant` (every tenant's when None), oldest first."""

    async def revoke_signing_key(self, key_id: str, now: float) -> bool | None:
        """Revoke a key; None when there is no such key, False when it was revoked already."""

    async def shared_secret(self, name: str, candidate: bytes, now: float) -> bytes:
        """The secret called `name` that every node of the deployment shares: `candidate`
        becomes it when there is none yet, else the stored one is answered."""

    # Nodes: every node upserts its row every few seconds (domain.placement says why).
    async def heartbeat_node(self, node: NodeRecord) -> None:
        """Insert or refresh `node`'s row (its labels, role and `seen_at`)."""

    async def forget_node(self, name: str) -> None:
        """Remove `name`'s row: the node stops (it no longer counts as live)."""

    async def live_nodes(self, since: float) -> list[NodeRecord]:
        """The nodes seen at or after `since`, by name."""
