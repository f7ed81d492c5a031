"""`InstancePool`: one function's warm instances on this node — assignment to free slots, spawning
up to `max_instances`, replacing the dead lazily, reaping the idle after a TTL."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asyncfn.domain.models import FunctionSpec
from asyncfn.domain.outcomes import InstanceExited, Outcome, Raised
from asyncfn.runtime.instance import Assignment, Instance, RuntimeListener
from asyncfn.runtime.process import InstanceLimits

__all__ = ["IDLE_TTL_S_DEFAULT", "Assignment", "InstancePool", "RunResult", "RuntimeListener"]

logger = logging.getLogger(__name__)

IDLE_TTL_S_DEFAULT = 60.0


@dataclass(frozen=True, slots=True)
class RunResult:
    outcome: Outcome
    instance_id: str | None


def _not_run(reason: str) -> InstanceExited:
    """The outcome of an attempt that never reached an instance (the pool stopped first)."""
    return InstanceExited(exit_code=None, signal=None, stderr_tail=reason, duration_ms=0.0)


class InstancePool:
    """Runs one function's attempts on warm instances, at most `capacity` at once.

    The engine calls `run` only while `free_slots()` is positive; a call beyond that waits for
    a slot. A handler that fails to import fails every attempt (HandlerImportError, not
    retryable) without spawning again until the pool is rebuilt.
    """

    def __init__(
        self,
        spec: FunctionSpec,
        code_dir: Path | None,
        listener: RuntimeListener,
        *,
        scratch_dir: Path,
        idle_ttl_s: float = IDLE_TTL_S_DEFAULT,
        base_env: Mapping[str, str],
        limits: InstanceLimits | None = None,
    ) -> None:
        self.spec = spec
        self._code_dir = code_dir
        self._cwd = code_dir if code_dir is not None else scratch_dir
        self._listener = listener
        self._idle_ttl_s = idle_ttl_s
        self._base_env = base_env
        self._limits = limits or InstanceLimits()
        self._scratch_ready = False
        self._instances: list[Instance] = []
        self._running: dict[int, Instance] = {}
        self._idle_timers: dict[Instance, asyncio.TimerHandle] = {}
        self._waiters: list[asyncio.Future[None]] = []
        self._closing: set[asyncio.Task[None]] = set()
        self._busy = 0
        self._import_failure: Raised | None = None
        self._stopped = False
        self._stop_task: asyncio.Task[None] | None = None

    @property
    def capacity(self) -> int:
        return self.spec.max_instances * self.spec.instance_concurrency

    @property
    def busy(self) -> int:
        """Attempts currently assigned (running, or waiting for an instance)."""
        return self._busy

    def free_slots(self) -> int:
        return 0 if self._stopped else max(0, self.capacity - self._busy)

    @property
    def instances(self) -> tuple[Instance, ...]:
        """The live instances (for stats: pid, state, load)."""
        return tuple(self._instances)

    async def start(self) -> None:
        """Spawn `spec.min_instances` warm instances and wait (up to the timeout) until ready."""
        if self._stopped or self._import_failure is not None:
            return
        missing = self.spec.min_instances - len(self._instances)
        fresh = [self._spawn() for _ in range(max(0, missing))]
        if fresh:
            await asyncio.wait(
                [asyncio.ensure_future(i.wait_ready()) for i in fresh],
                timeout=self.spec.timeout_s,
            )
        for instance in fresh:
            if instance.reserved == 0 and instance in self._instances:
                self._schedule_idle(instance)

    async def stop(self, grace_s: float = 2.0) -> None:
        """Terminate every instance (SIGTERM, SIGKILL after `grace_s`); safe to call twice."""
        if self._stop_task is None:
            self._stop_task = asyncio.ensure_future(self._shutdown(grace_s))
        await asyncio.shield(self._stop_task)

    async def run(self, a: Assignment) -> RunResult:
        """Run one attempt on a warm instance (spawning one if needed) and return its outcome."""
        if self._import_failure is not None:
            return RunResult(self._import_failure, None)
        if self._stopped:
            return RunResult(_not_run("the instance pool is stopped"), None)
        self._busy += 1
        try:
            instance = await self._acquire()
            if instance is None:
                failure = self._import_failure or _not_run("the instance pool is stopped")
                return RunResult(failure, None)
            self._running[a.row] = instance
            try:
                outcome = await instance.run(a)
            finally:
                self._running.pop(a.row, None)
                self._release(instance)
            if instance.import_error is not None:
                self._cache_import_failure(instance)
            return RunResult(outcome, instance.instance_id)
        finally:
            self._busy -= 1

    async def stop_task(self, row: int, grace_s: float | None = None) -> bool:
        """End a running attempt: its `run` returns Stopped. False if `row` is not running here.
        Other attempts sharing its instance end as InstanceExited."""
        instance = self._running.get(row)
        if instance is None:
            return False
        grace = self.spec.stop_grace_s if grace_s is None else grace_s
        return await instance.stop_attempt(row, grace)

    def suspend_task(self, row: int) -> bool:
        """SIGSTOP the instance running `row` (and its deadline clock). False if not running."""
        instance = self._running.get(row)
        if instance is not None:
            instance.suspend()
        return instance is not None

    def resume_task(self, row: int) -> bool:
        """SIGCONT the instance running `row`. False if not running here."""
        instance = self._running.get(row)
        if instance is not None:
            instance.resume()
        return instance is not None

    # -- assignment -----------------------------------------------------------------------

    async def _acquire(self) -> Instance | None:
        """A slot on a ready (else starting, else new) instance; None if the pool gave up."""
        loop = asyncio.get_running_loop()
        while not self._stopped and self._import_failure is None:
            instance = self._pick()
            if instance is None and len(self._instances) < self.spec.max_instances:
                instance = self._spawn()
            if instance is not None:
                instance.reserved += 1
                timer = self._idle_timers.pop(instance, None)
                if timer is not None:
                    timer.cancel()
                return instance
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        return None

    def _pick(self) -> Instance | None:
        starting = None
        for instance in self._instances:  # oldest first: newer ones idle out
            if (
                instance.retiring
                or instance.import_error is not None
                or instance.suspended
                or instance.reserved >= self.spec.instance_concurrency
            ):
                continue
            if instance.state == "ready":
                return instance
            if starting is None and instance.state == "starting":
                starting = instance
        return starting

    def _spawn(self) -> Instance:
        if self._code_dir is None and not self._scratch_ready:
            self._prepare_scratch()
        instance = Instance(
            self.spec,
            self._listener,
            cwd=self._cwd,
            code_dir=self._code_dir,
            base_env=self._base_env,
            limits=self._limits,
            on_exit=self._on_instance_exit,
        )
        self._instances.append(instance)
        instance.start()
        return instance

    def _prepare_scratch(self) -> None:
        """Create the scratch folder (the cwd of a function without code), owned by the
        instance user when instances run as one."""
        self._cwd.mkdir(parents=True, exist_ok=True)
        run_as = self._limits.run_as
        if run_as is not None:
            os.chown(self._cwd, run_as.uid, run_as.gid)
        self._scratch_ready = True

    def _release(self, instance: Instance) -> None:
        instance.reserved -= 1
        if instance.reserved == 0 and instance in self._instances and not self._stopped:
            self._schedule_idle(instance)
        self._wake()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # -- instance lifecycle ---------------------------------------------------------------

    def _on_instance_exit(self, instance: Instance) -> None:
        timer = self._idle_timers.pop(instance, None)
        if timer is not None:
            timer.cancel()
        if instance in self._instances:
            self._instances.remove(instance)
        if instance.import_error is not None:
            self._cache_import_failure(instance)
        self._wake()

    def _cache_import_failure(self, instance: Instance) -> None:
        if self._import_failure is None:
            self._import_failure = instance.import_failure()
            logger.warning(
                "function %s: handler %r does not import (%s); failing its tasks until redeployed",
                self.spec.name,
                self.spec.handler,
                self._import_failure.message,
            )
            self._wake()

    def _schedule_idle(self, instance: Instance) -> None:
        loop = asyncio.get_running_loop()
        self._idle_timers[instance] = loop.call_later(self._idle_ttl_s, self._reap_idle, instance)

    def _reap_idle(self, instance: Instance) -> None:
        self._idle_timers.pop(instance, None)
        if (
            instance.reserved
            or instance not in self._instances
            or len(self._instances) <= self.spec.min_instances
        ):
            return
        self._instances.remove(instance)
        self._track(instance.close())
        self._wake()

    def _track(self, closing: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(closing)
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _shutdown(self, grace_s: float) -> None:
        self._stopped = True
        for timer in self._idle_timers.values():
            timer.cancel()
        self._idle_timers.clear()
        self._wake()
        instances, self._instances = self._instances, []
        await asyncio.gather(*(i.terminate(grace_s) for i in instances), *self._closing)
