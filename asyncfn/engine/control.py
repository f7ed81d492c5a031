"""TaskControl: stop, suspend, resume and rerun of one task, and pausing a function's queue.

Each control is a durable transition first, then the signal: a stop or suspend that the store
has committed holds whatever restarts in between, and a signal never runs ahead of the record.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable

from asyncfn.domain.errors import NotFound, TransitionRefused
from asyncfn.domain.models import FunctionSpec, RetryBackoff, Submitted
from asyncfn.domain.outcomes import Stopped
from asyncfn.domain.states import TaskStatus
from asyncfn.engine.catalog import FunctionCatalog
from asyncfn.engine.completer import Completer
from asyncfn.engine.completions import Completions, ended_within
from asyncfn.engine.dispatcher import Dispatcher
from asyncfn.engine.reporter import AttemptReporter
from asyncfn.metrics import NodeMetrics
from asyncfn.store.base import Control, Store

log = logging.getLogger("asyncfn.engine")

S = TaskStatus
STOP_WAIT_EXTRA_S = 3.0


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

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def stop_task(self, tenant: str, task_id: str, by: str) -> Control:
        """Stop a task. A queued one is Stopped at once; a running one goes Stopping, its
        process group gets SIGTERM (SIGKILL after the function's grace) and the call waits until
        it is Stopped, up to the grace plus a few seconds."""
        detail = {"by": by}
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
        grace_s = spec.stop_grace_s if spec is not None else 2.0
        self._dispatcher.mark_stopping(ctl.row)
        # Watch before signalling: the attempt may end Stopped (and be reported) before
        # stop_attempt or _finish_stopped return.
        with self._completions.watch(ctl.row) as stopped:
            if not await self._dispatcher.stop_attempt(ctl.row, grace_s):
                await self._finish_stopped(ctl, spec)
            if not await ended_within(stopped, grace_s + STOP_WAIT_EXTRA_S):
                return ctl
        return _replace_status(ctl, S.STOPPED)

    async def _finish_stopped(self, ctl: Control, spec: FunctionSpec | None) -> None:
        """The attempt is not running on this node (it ended as the stop came, or its node is
        gone): record Stopped directly; the finish guard keeps any other ending out."""
        if ctl.node not in (None, self._dispatcher.node):
            return  # another node runs it: its janitor or its own run finishes the stop
        backoff = spec.async_policy.retry_backoff if spec is not None else RetryBackoff()
        await self._completer.apply(
            ctl.row,
            ctl.attempt,
            ctl.attempt,
            backoff,
            Stopped(duration_ms=0.0),
            {"reason": "stopped while not running on an instance"},
            function=ctl.function,
        )

    async def suspend_task(self, tenant: str, task_id: str, by: str) -> Control:
        """Hold a queued task out of dispatch, or freeze a running one (SIGSTOP)."""
        ctl = _found(await self._store.suspend(tenant, task_id, self._clock(), {"by": by}), task_id)
        if not ctl.changed:
            raise TransitionRefused(task_id, ctl.status.value, S.SUSPENDED.value)
        if ctl.live:
            self._dispatcher.suspend_attempt(ctl.row)
        self._reporter.system_line(ctl.row, f"[asyncfn] suspended by {by}")
        return ctl

    async def resume_task(self, tenant: str, task_id: str, by: str) -> Control:
        """Thaw a frozen task (SIGCONT) or put a held one back in the queue."""
        ctl = _found(await self._store.resume(tenant, task_id, self._clock(), {"by": by}), task_id)
        if not ctl.changed:
            raise TransitionRefused(task_id, ctl.status.value, "resumed")
        if ctl.status is S.RUNNING:
            self._dispatcher.resume_attempt(ctl.row)
        else:
            self._dispatcher.notify((tenant, ctl.function))
        self._reporter.system_line(ctl.row, f"[asyncfn] resumed by {by}")
        return ctl

    async def rerun_task(self, tenant: str, task_id: str, new_task_id: str | None) -> Submitted:
        """A new task with a finished task's payload, linked to it by `rerun_of`."""
        original = await self._store.get_task(tenant, task_id)
        if original is None:
            raise NotFound("task", task_id)
        spec = self._catalog.require(tenant, original.function)
        submitted = await self._store.rerun(
            tenant,
            task_id,
            new_task_id,
            self._clock(),
            spec.async_policy.max_attempts,
            spec.priority,
        )
        if submitted is None:
            raise NotFound("task", task_id)
        if submitted.created:
            self._dispatcher.notify((tenant, original.function))
        return submitted

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
