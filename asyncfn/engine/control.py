"""TaskControl: stop, suspend, resume, rerun and purge of one task, and pausing a function's
queue.

Each control is a durable transition first, then the signal: a stop or suspend that the store
has committed holds whatever restarts in between, and a signal never runs ahead of the record.
An attempt running on another node is signalled by that node, which hears the commit
(engine/cluster.py, `apply_signal`); a stop of it waits on the store instead of on this node.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

from asyncfn.domain.errors import NotFound, TransitionRefused
from asyncfn.domain.flow import Claim, Preempt
from asyncfn.domain.models import FunctionSpec, RetryBackoff, Submitted
from asyncfn.domain.outcomes import Stopped
from asyncfn.domain.states import TaskStatus
from asyncfn.engine.catalog import FunctionCatalog
from asyncfn.engine.completer import Completer
from asyncfn.engine.completions import Completions, ended_within
from asyncfn.engine.dispatcher import Dispatcher
from asyncfn.engine.reporter import AttemptReporter
from asyncfn.engine.service import background
from asyncfn.metrics import NodeMetrics
from asyncfn.store.base import Control, PurgeResult, Store
from asyncfn.store.feed import ControlSignal

log = logging.getLogger("asyncfn.engine")

S = TaskStatus
STOP_WAIT_EXTRA_S = 3.0
DEFAULT_GRACE_S = 2.0
KEY_STOP_BY = "concurrency_key"
"""Who stops a running task a cancel_oldest concurrency key replaces (its events' `by`)."""
REMOTE_POLL_S = (0.01, 0.1)
"""The first and the longest pause between reads of a task another node is stopping."""


class TaskControl:
    name = "control"

    def __init__(
        self,
        store: Store,
        catalog: FunctionCatalog,
        dispatcher: Dispatcher,
        completer: Completer,
        reporter: AttemptReporter,
        completions: Completions,
        *,
        metrics: NodeMetrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._metrics = metrics or NodeMetrics()
        self._store = store
        self._catalog = catalog
        self._dispatcher = dispatcher
        self._completer = completer
        self._reporter = reporter
        self._completions = completions
        self._clock = clock
        self._preempting: set[int] = set()
        self._preemptions: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        for task in list(self._preemptions):
            task.cancel()
        if self._preemptions:
            await asyncio.gather(*self._preemptions, return_exceptions=True)

    async def stop_task(
        self, tenant: str, task_id: str, by: str, detail: dict[str, Any] | None = None
    ) -> Control:
        """Stop a task. A queued one is Stopped at once; a running one goes Stopping, its
        process group gets SIGTERM (SIGKILL after the function's grace) and the call waits until
        it is Stopped, up to the grace plus a few seconds. `detail` goes into its event."""
        detail = {"by": by, **(detail or {})}
        ctl = _found(await self._store.stop(tenant, task_id, self._clock(), detail), task_id)
        if not ctl.changed and ctl.status is not S.STOPPING:
            raise TransitionRefused(task_id, ctl.status.value, S.STOPPED.value)
        self._reporter.system_line(ctl.row, f"[asyncfn] stop requested by {by}")
        if ctl.changed:
            self._metrics.stops.labels(ctl.function).inc()
        if ctl.status is S.STOPPED:
            self._metrics.finishes.labels(ctl.function, S.STOPPED.value).inc()
            self._completions.notify(ctl.row)
            return ctl
        spec = self._catalog.get(tenant, ctl.function)
        grace_s = spec.stop_grace_s if spec is not None else DEFAULT_GRACE_S
        within_s = grace_s + STOP_WAIT_EXTRA_S
        if ctl.node not in (None, self._dispatcher.node):
            # Another node runs the attempt: the store's signal reaches it (engine/cluster.py),
            # or, if that node is gone, its lease runs out and a janitor records Stopped.
            return await self._ended_elsewhere(tenant, task_id, ctl, within_s)
        # Watch before signalling: the attempt may end Stopped (and be reported) before
        # _end_attempt returns.
        with self._completions.watch(ctl.row) as stopped:
            await self._end_attempt(ctl.row, ctl.attempt, tenant, ctl.function, grace_s)
            if not await ended_within(stopped, within_s):
                return ctl
        return _replace_status(ctl, S.STOPPED)

    async def stop_waiting(self, tenant: str, task_ids: list[str], by: str) -> list[Control]:
        """Stop many waiting tasks in one store transaction (a bulk stop's batch); a running
        one is answered unchanged and `live`, for `stop_task`."""
        stopped = await self._store.stop_waiting(tenant, task_ids, self._clock(), {"by": by})
        for ctl in stopped:
            if ctl.changed:
                self._reporter.system_line(ctl.row, f"[asyncfn] stop requested by {by}")
                self._metrics.stops.labels(ctl.function).inc()
                self._metrics.finishes.labels(ctl.function, S.STOPPED.value).inc()
                self._completions.notify(ctl.row)
        return stopped

    def key_limits(self, function: str, claim: Claim) -> None:
        """A claim ended waiting tasks at a cancel_newest key limit (the store recorded them
        Stopped as a stop of a waiting task), or asks to stop the running tasks a cancel_oldest
        limit replaces: each goes through `stop_task`, so its node signals it, here or by the
        cluster's control channel; one stop per task however many claims ask."""
        for row in claim.stopped:
            self._reporter.system_line(row, "[asyncfn] stopped: a concurrency key is at its limit")
            self._metrics.stops.labels(function).inc()
            self._metrics.finishes.labels(function, S.STOPPED.value).inc()
            self._completions.notify(row)
        for preempt in claim.preempt:
            if preempt.row in self._preempting:
                continue
            self._preempting.add(preempt.row)
            background(
                self._preemptions,
                self._preempt(preempt),
                f"stopping task {preempt.task_id} for a concurrency key",
            )

    async def _preempt(self, preempt: Preempt) -> None:
        try:
            await self.stop_task(preempt.tenant, preempt.task_id, KEY_STOP_BY, preempt.detail)
        except (NotFound, TransitionRefused):
            pass  # it ended (or was stopped by someone else) before the stop came
        finally:
            self._preempting.discard(preempt.row)

    async def apply_signal(self, signal: ControlSignal) -> None:
        """A stop, suspend or resume committed through another node, for an attempt running on
        this one (engine/cluster.py hears it): signal the attempt as this node's own call would
        have. Signalling twice is harmless: a stop under way is not repeated, a frozen
        instance is not frozen again."""
        if signal.node != self._dispatcher.node:
            return
        running = self._dispatcher.running_task(signal.row)
        if running is not None and running.attempt != signal.attempt:
            return  # a signal for an attempt that has ended since
        if signal.kind == "stop":
            spec = self._catalog.get(signal.tenant, signal.function)
            grace_s = spec.stop_grace_s if spec is not None else DEFAULT_GRACE_S
            await self._end_attempt(
                signal.row, signal.attempt, signal.tenant, signal.function, grace_s
            )
        elif signal.kind == "suspend":
            self._dispatcher.suspend_attempt(signal.row)
        else:
            self._dispatcher.resume_attempt(signal.row)

    async def _end_attempt(
        self, row: int, attempt: int, tenant: str, function: str, grace_s: float
    ) -> None:
        """SIGTERM the attempt of `row` on this node (SIGKILL after `grace_s`), once however
        many stops ask; when it does not run here (it ended as the stop came, or this node
        restarted since), record Stopped directly: the finish guard keeps any other ending
        out."""
        if self._dispatcher.stop_requested(row):
            return  # a stop is ending it already; its outcome is recorded as Stopped
        self._dispatcher.mark_stopping(row)
        if await self._dispatcher.stop_attempt(row, grace_s):
            return
        spec = self._catalog.get(tenant, function)
        backoff = spec.async_policy.retry_backoff if spec is not None else RetryBackoff()
        await self._completer.apply(
            row,
            attempt,
            attempt,
            backoff,
            Stopped(duration_ms=0.0),
            {"reason": "stopped while not running on an instance"},
            function=function,
        )

    async def _ended_elsewhere(
        self, tenant: str, task_id: str, ctl: Control, within_s: float
    ) -> Control:
        """Poll the store until the task is terminal (Stopped, whatever its attempt's outcome),
        up to `within_s`; answers it with that status, or as Stopping when time runs out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        delay = REMOTE_POLL_S[0]
        while True:
            task = await self._store.get_task(tenant, task_id)
            if task is None:  # purged already: it ended
                return _replace_status(ctl, S.STOPPED)
            if task.status.terminal:
                return _replace_status(ctl, task.status)
            left = deadline - loop.time()
            if left <= 0:
                return ctl
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, REMOTE_POLL_S[1])

    async def suspend_task(self, tenant: str, task_id: str, by: str) -> Control:
        """Hold a queued task out of dispatch, or freeze a running one (SIGSTOP)."""
        ctl = _found(await self._store.suspend(tenant, task_id, self._clock(), {"by": by}), task_id)
        if not ctl.changed:
            raise TransitionRefused(task_id, ctl.status.value, S.SUSPENDED.value)
        if ctl.live and ctl.node == self._dispatcher.node:  # else its node hears the store
            self._dispatcher.suspend_attempt(ctl.row)
        self._reporter.system_line(ctl.row, f"[asyncfn] suspended by {by}")
        return ctl

    async def resume_task(self, tenant: str, task_id: str, by: str) -> Control:
        """Thaw a frozen task (SIGCONT) or put a held one back in the queue."""
        ctl = _found(await self._store.resume(tenant, task_id, self._clock(), {"by": by}), task_id)
        if not ctl.changed:
            raise TransitionRefused(task_id, ctl.status.value, "resumed")
        if ctl.status is S.RUNNING:
            self._dispatcher.resume_attempt(ctl.row)  # a no-op unless it runs here
        else:
            self._dispatcher.notify((tenant, ctl.function))
        self._reporter.system_line(ctl.row, f"[asyncfn] resumed by {by}")
        return ctl

    async def rerun_task(
        self, tenant: str, task_id: str, new_task_id: str | None, *, dead_letter: bool = False
    ) -> Submitted:
        """A new task with a finished task's payload, linked to it by `rerun_of`; of a dead
        letter, with its entry marked in the same transaction (AlreadyRerun the second time)."""
        what = "dead_letter" if dead_letter else "task"
        original = await self._store.get_task(tenant, task_id)
        if original is None:
            raise NotFound(what, task_id)
        spec = self._catalog.require(tenant, original.function)
        rerun = self._store.rerun_dead_letter if dead_letter else self._store.rerun
        submitted = await rerun(
            tenant,
            task_id,
            new_task_id,
            self._clock(),
            spec.async_policy.max_attempts,
            spec.priority,
        )
        if submitted is None:
            raise NotFound(what, task_id)
        if submitted.created:
            self._dispatcher.notify((tenant, original.function))
        return submitted

    async def purge_task(self, tenant: str, task_id: str) -> PurgeResult:
        """Erase an ended task's data (store.purge_task); TransitionRefused while it has not
        ended, since its attempt may still need its payload and checkpoint."""
        purged = await self._store.purge_task(tenant, task_id, self._clock())
        if purged is None:
            raise NotFound("task", task_id)
        return purged

    async def pause_function(self, tenant: str, name: str, paused: bool) -> FunctionSpec:
        """Pause or resume a whole function's queue; running tasks go on."""
        spec = await self._catalog.set_paused(tenant, name, paused)
        if not paused:
            self._dispatcher.notify((tenant, name))
        return spec


def _found(ctl: Control | None, task_id: str) -> Control:
    if ctl is None:
        raise NotFound("task", task_id)
    return ctl


def _replace_status(ctl: Control, status: TaskStatus) -> Control:
    return dataclasses.replace(ctl, status=status)
