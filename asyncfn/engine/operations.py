"""OperationRunner: creates bulk operations (stop, rerun, purge over a task filter) and runs
them in bounded batches through task control, saving progress after each batch.

An operation lives in the store: a node claims it with a lease, walks its tasks by row in
batches (one store transaction for a batch of waiting tasks to stop), and saves done, skipped
and the last row handled after each; a restarted node, or on PostgreSQL another node once the
lease lapses, goes on from there. Nothing is lost by a crash: a batch redone acts only on the
tasks still applicable, and a rerun's task id is derived from the operation and the row.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence

from asyncfn.domain.errors import NotFound, TransitionRefused
from asyncfn.domain.operations import (
    MatchedTask,
    Operation,
    OperationKind,
    OperationStatus,
    TaskFilter,
)
from asyncfn.domain.states import TaskStatus
from asyncfn.engine.control import TaskControl
from asyncfn.engine.service import Supervisor, wait_for_event
from asyncfn.store.base import Store

log = logging.getLogger("asyncfn.engine")

S = TaskStatus
BATCH = 100
"""Tasks per batch: one store transaction for the waiting ones of a stop, a few ms of writer."""
PARALLEL = 32
"""Single-task controls (running stops, reruns, purges) in flight at once within a batch."""
POLL_S = 1.0
"""How often a node looks for operations it was not told of (created through another node)."""
PACE = 1.0
"""After a batch the runner pauses PACE times as long as the batch took, so an operation takes
at most about half of the store's writer and of the node's loop: submissions and claims keep
their latency while it runs."""
MAX_PAUSE_S = 0.1
RETRIES = 5
"""Failed attempts at one batch (a store error, a deadlock) before the operation fails."""
SKIPPED = (NotFound, TransitionRefused)
"""A task that ended, was purged or was deleted since it matched: skipped, not an error."""


def new_operation_id() -> str:
    return f"op_{time.time_ns():x}{secrets.token_hex(6)}"


class OperationRunner:
    name = "operations"

    def __init__(
        self,
        store: Store,
        control: TaskControl,
        supervisor: Supervisor,
        *,
        node: str,
        lease_s: float = 30.0,
        batch: int = BATCH,
        poll_s: float = POLL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._control = control
        self._supervisor = supervisor
        self._node = node
        self._lease_s = lease_s
        self._batch = batch
        self._poll_s = poll_s
        self._clock = clock
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = self._supervisor.spawn("operations", self._loop())

    async def stop(self) -> None:
        task, self._task = self._task, None
        await self._supervisor.cancel(task)

    # -- the API's calls ---------------------------------------------------------------------
    async def count(self, tenant: str, kind: OperationKind, f: TaskFilter) -> int:
        """How many tasks an operation of `kind` over `f` would act on now (a dry run)."""
        return await self._store.count_operation_tasks(tenant, kind, f, self._clock())

    async def create(self, tenant: str, kind: OperationKind, f: TaskFilter) -> Operation:
        """A new running operation; this node (when it runs operations) starts on it at once,
        others find it within POLL_S."""
        op = await self._store.create_operation(new_operation_id(), tenant, kind, f, self._clock())
        self._wake.set()
        return op

    async def get(self, tenant: str, op_id: str) -> Operation:
        op = await self._store.get_operation(tenant, op_id)
        if op is None:
            raise NotFound("operation", op_id)
        return op

    async def list(self, tenant: str, limit: int) -> list[Operation]:
        return await self._store.list_operations(tenant, limit)

    # -- the loop ----------------------------------------------------------------------------
    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            now = self._clock()
            op = await self._store.claim_operation(self._node, now, now + self._lease_s)
            if op is None:
                await wait_for_event(self._wake, self._poll_s)
                continue
            log.info("operation %s (%s) %s from row %s", op.id, op.kind, op.status, op.cursor)
            await self.run(op)

    async def run(self, op: Operation) -> Operation | None:
        """Walk `op` to its end from its cursor; answers it as ended, or None when this node
        lost it (another node took it over)."""
        failures = 0
        while True:
            began = time.monotonic()
            try:
                batch = await self._store.operation_batch(op, self._batch)
                if not batch:
                    return await self._end(op, "succeeded", None)
                done, skipped = await self._apply(op, batch)
                now = self._clock()
                walked = dataclasses.replace(
                    op, done=op.done + done, skipped=op.skipped + skipped, cursor=batch[-1].row
                )
                saved = await self._store.save_operation(
                    op.id,
                    self._node,
                    walked.done,
                    walked.skipped,
                    walked.cursor,
                    now,
                    now + self._lease_s,
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any store error: each transaction is whole, so retry
                failures += 1
                log.warning(
                    "operation %s: batch failed (%d of %d)", op.id, failures, RETRIES, exc_info=exc
                )
                if failures >= RETRIES:
                    return await self._end(op, "failed", f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(min(2.0**failures * 0.1, 2.0))
                continue
            if not saved:
                log.warning("operation %s: no longer this node's; leaving it", op.id)
                return None
            failures, op = 0, walked
            await asyncio.sleep(min((time.monotonic() - began) * PACE, MAX_PAUSE_S))

    async def _end(
        self, op: Operation, status: OperationStatus, error: str | None
    ) -> Operation | None:
        # Tasks matched at creation but no longer applicable when the walk reached them (ended,
        # purged or deleted since) were not in any batch: they count as skipped.
        skipped = max(op.skipped, op.total - op.done)
        now = self._clock()
        ended = await self._store.end_operation(
            op.id, self._node, status, op.done, skipped, op.cursor, error, now
        )
        if not ended:
            return None
        log.info("operation %s %s: %d done, %d skipped", op.id, status, op.done, skipped)
        return dataclasses.replace(
            op, status=status, skipped=skipped, error=error, finished_at=now, updated_at=now
        )

    # -- one batch ---------------------------------------------------------------------------
    async def _apply(self, op: Operation, batch: Sequence[MatchedTask]) -> tuple[int, int]:
        """Act on one batch; answers (done, skipped)."""
        by = f"operation {op.id}"
        if op.kind == "stop":
            return await self._stop(op.tenant, batch, by)
        if op.kind == "rerun":
            acts = [self._rerun(op, task) for task in batch]
        else:
            acts = [self._purge(op.tenant, task) for task in batch]
        outcomes = await _bounded(acts)
        done = sum(outcomes)
        return done, len(outcomes) - done

    async def _stop(self, tenant: str, batch: Sequence[MatchedTask], by: str) -> tuple[int, int]:
        """The waiting tasks in one transaction; the live ones through `stop_task`, which
        signals their instances (on this node or, through the store, on theirs)."""
        answers = await self._control.stop_waiting(tenant, [t.id for t in batch], by)
        done = sum(1 for ctl in answers if ctl.changed)
        live = [c.id for c in answers if not c.changed and c.live and c.status is not S.STOPPING]
        outcomes = await _bounded([self._stop_live(tenant, task_id, by) for task_id in live])
        done += sum(outcomes)
        return done, len(batch) - done

    async def _stop_live(self, tenant: str, task_id: str, by: str) -> bool:
        try:
            ctl = await self._control.stop_task(tenant, task_id, by)
        except SKIPPED:
            return False
        return ctl.changed

    async def _rerun(self, op: Operation, task: MatchedTask) -> bool:
        # The rerun's id comes from the operation and the row: a batch redone after a crash
        # finds it taken instead of running the task twice.
        try:
            await self._control.rerun_task(op.tenant, task.id, f"{op.id}.{task.row}")
        except SKIPPED:
            return False
        return True

    async def _purge(self, tenant: str, task: MatchedTask) -> bool:
        try:
            purged = await self._control.purge_task(tenant, task.id)
        except SKIPPED:
            return False
        return purged.changed


async def _bounded(acts: Sequence[Awaitable[bool]]) -> list[bool]:
    """Await `acts`, at most PARALLEL at once."""
    gate = asyncio.Semaphore(PARALLEL)

    async def one(act: Awaitable[bool]) -> bool:
        async with gate:
            return await act

    return list(await asyncio.gather(*(one(act) for act in acts)))
