"""`InstancePool`: one function's warm instances on this node — assignment to free slots, spawning
(or forking, from the pool's fork server) up to `max_instances` within the node's capacity, a warm
target, reaping the idle after a TTL (the sizing bookkeeping is `sizing.PoolSizing`)."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from asyncfn.domain.models import FunctionSpec
from asyncfn.domain.outcomes import InstanceExited, Outcome, Raised
from asyncfn.runtime.capacity import IdleInstance, NodeCapacity
from asyncfn.runtime.forkserver import ForkServer
from asyncfn.runtime.instance import Assignment, Instance, RuntimeListener
from asyncfn.runtime.process import InstanceLimits
from asyncfn.runtime.sizing import PoolSizing, PoolStats, takes_attempts, unfit_for

__all__ = [
    "IDLE_TTL_S_DEFAULT",
    "Assignment",
    "InstancePool",
    "PoolStats",
    "RunResult",
    "RuntimeListener",
]

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

    Instances start on demand up to `max_instances`, within the node's `capacity` when given:
    when the node is full, an attempt closes another pool's idle instance and waits until it
    exits (or until any instance of the node exits). `target` (set by `scale_to`, at least
    `min_instances`) is how many instances are kept warm: pre-started, and exempt from the
    idle TTL.

    With `fork_server`, `start()` first starts the function's fork server (when the function
    can run: it has code, or is a command) and every instance is forked from it while it is
    alive. Until `start()` has run, and once the server has failed, instances are spawned as
    without one (slower cold starts; a failed server is logged by itself and not restarted).
    `stop()` stops the instances, then the server.
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
        capacity: NodeCapacity | None = None,
        fork_server: bool = False,
    ) -> None:
        self.spec = spec
        self._code_dir = code_dir
        self._cwd = code_dir if code_dir is not None else scratch_dir
        self._listener = listener
        self._base_env = base_env
        self._limits = limits or InstanceLimits()
        self._scratch_ready = False
        self._instances: list[Instance] = []
        self._sizing = PoolSizing(
            lambda: self.spec,
            self._instances,
            idle_ttl_s=idle_ttl_s,
            retire=self._retire_idle,
            capacity=capacity,
            member=self,
        )
        self._running: dict[int, Instance] = {}
        self._waiters: list[asyncio.Future[None]] = []
        self._closing: set[asyncio.Task[None]] = set()
        self._busy = 0
        self._import_failure: Raised | None = None
        self._stopped = False
        self._stop_task: asyncio.Task[None] | None = None
        self._capacity = capacity
        self._fork_server = fork_server
        self._forker: ForkServer | None = None
        self._forker_start: asyncio.Task[None] | None = None
        self._waiting = 0
        self._room_waiting = 0
        self._unfit = unfit_for(spec, capacity)
        if capacity is not None:
            capacity.register(self)

    @property
    def capacity(self) -> int:
        return self.spec.max_instances * self.spec.instance_concurrency

    @property
    def busy(self) -> int:
        """Attempts currently assigned (running, or waiting for an instance)."""
        return self._busy

    def free_slots(self) -> int:
        """Attempts this pool could start now without waiting: free slots on its live instances
        plus the slots of the instances it may still start (up to `max_instances`, and within
        the node's room, counting other pools' idle instances as reclaimable), less the attempts
        already waiting. A pool that can only fail attempts answers its whole free capacity."""
        if self._stopped:
            return 0
        if self._import_failure is not None or self._unfit is not None:
            return max(0, self.capacity - self._busy)
        return self._sizing.free_slots(self._waiting)

    @property
    def instances(self) -> tuple[Instance, ...]:
        """The live instances (for stats: pid, state, load)."""
        return tuple(self._instances)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def target(self) -> int:
        """Instances kept warm (at least `min_instances`, at most `max_instances`)."""
        return self._sizing.target

    @property
    def instance_memory_mb(self) -> int:
        return self.spec.memory_mb

    @property
    def room_waiters(self) -> int:
        return self._room_waiting

    def busy_fraction(self) -> float:
        """Reserved slots over those of the instances taking attempts (see `PoolSizing`)."""
        return self._sizing.busy_fraction(self._waiting)

    async def start(self) -> None:
        """Start the fork server (with `fork_server`), then spawn the warm instances
        (`min_instances`, or the target) and wait (up to the timeout) until they are ready."""
        if self._stopped or self._import_failure is not None:
            return
        if self._fork_server and self._forker_start is None:
            self._forker_start = asyncio.ensure_future(self._start_fork_server())
        if self._forker_start is not None:
            await asyncio.shield(self._forker_start)
        before = set(self._instances)
        self.warm_up()
        fresh = [i for i in self._instances if i not in before]
        if fresh:
            await asyncio.wait(
                [asyncio.ensure_future(i.wait_ready()) for i in fresh],
                timeout=self.spec.timeout_s,
            )

    def scale_to(self, target: int, reason: str = "", *, at: float | None = None) -> int:
        """Keep `target` instances warm (clamped to the spec's range): start the missing ones
        now, within the node's room; above the target, idle instances go at their TTL (at once
        when they have been idle longer). Busy instances are never stopped. Answers how many
        instances it started."""
        self._sizing.retarget(target, reason, at=at)
        self._sizing.shed()
        return self.warm_up()

    def warm_up(self) -> int:
        """Start instances up to the target where the node has room now (never evicting, and
        not while other pools' attempts wait for room); answers how many it started."""
        if self._stopped or self._import_failure is not None or self._unfit is not None:
            return 0
        return self._sizing.warm_up(self._spawn)

    def stats(self) -> PoolStats:
        return self._sizing.stats(
            closing=len(self._closing), attempts=self._busy, forker=self._forker
        )

    async def stop(self, grace_s: float = 2.0) -> None:
        """Terminate every instance (SIGTERM, SIGKILL after `grace_s`), then stop the fork
        server; safe to call twice."""
        if self._stop_task is None:
            self._stop_task = asyncio.ensure_future(self._shutdown(grace_s))
        await asyncio.shield(self._stop_task)

    async def run(self, a: Assignment) -> RunResult:
        """Run one attempt on a warm instance (spawning one if needed) and return its outcome."""
        if self._import_failure is not None:
            return RunResult(self._import_failure, None)
        if self._stopped:
            return RunResult(_not_run("the instance pool is stopped"), None)
        if self._unfit is not None:
            return RunResult(_not_run(self._unfit), None)
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
        self._waiting += 1
        try:
            while not self._stopped and self._import_failure is None:
                instance = self._pick() or self._sizing.grow(self._spawn, self._room_waiting)
                if instance is not None:
                    instance.reserved += 1
                    self._sizing.not_idle(instance)
                    return instance
                await self._wait(for_room=len(self._instances) < self.spec.max_instances)
            return None
        finally:
            self._waiting -= 1

    async def _wait(self, *, for_room: bool) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._room_waiting += for_room
        try:
            await waiter
        finally:
            self._room_waiting -= for_room
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def _pick(self) -> Instance | None:
        starting = None
        for instance in self._instances:  # oldest first: newer ones idle out
            if not takes_attempts(instance) or instance.reserved >= self.spec.instance_concurrency:
                continue
            if instance.state == "ready":
                return instance
            if starting is None and instance.state == "starting":
                starting = instance
        return starting

    def _spawn(self) -> Instance:
        """Start an instance: forked when the fork server is alive, else spawned."""
        self._prepare_scratch()
        instance = Instance(
            self.spec,
            self._listener,
            cwd=self._cwd,
            code_dir=self._code_dir,
            base_env=self._base_env,
            limits=self._limits,
            on_exit=self._on_instance_exit,
            forker=self._forker,
        )
        self._instances.append(instance)
        if self._capacity is not None:
            self._capacity.admit(self, instance)
        self._sizing.watch(instance)
        instance.start()
        return instance

    async def _start_fork_server(self) -> None:
        """Start the fork server, if the function can run here (its failure is the server's to
        report: instances are then spawned)."""
        runnable = self._code_dir is not None or self.spec.runtime == "command"
        if self._stopped or self._unfit is not None or not runnable:
            return
        self._prepare_scratch()  # the server's cwd
        self._forker = ForkServer(
            self.spec,
            cwd=self._cwd,
            code_dir=self._code_dir,
            base_env=self._base_env,
            limits=self._limits,
        )
        await self._forker.start()

    def _prepare_scratch(self) -> None:
        """Create the scratch folder (the cwd of a function without code) once, owned by the
        instance user when instances run as one."""
        if self._code_dir is not None or self._scratch_ready:
            return
        self._cwd.mkdir(parents=True, exist_ok=True)
        run_as = self._limits.run_as
        if run_as is not None:
            os.chown(self._cwd, run_as.uid, run_as.gid)
        self._scratch_ready = True

    def _release(self, instance: Instance) -> None:
        instance.reserved -= 1
        if instance.reserved == 0 and instance in self._instances and not self._stopped:
            self._sizing.idle(instance)
        self._wake()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def room_freed(self) -> None:
        """Some instance of the node exited: attempts waiting for room try again."""
        if self._room_waiting:
            self._wake()

    # -- for the node's capacity ----------------------------------------------------------

    def idle_instances(self) -> list[IdleInstance]:
        """Ready instances with nothing to do, longest idle first (for the node's capacity)."""
        return self._sizing.idle_instances()

    def evict(self, instance: object) -> bool:
        """Close an idle instance for another pool; False if it is not (or no longer) idle."""
        if not self._sizing.evictable(instance):
            return False
        self._retire_idle(instance)
        return True

    # -- instance lifecycle ---------------------------------------------------------------

    def _on_instance_exit(self, instance: Instance) -> None:
        self._sizing.not_idle(instance)
        if instance in self._instances:
            self._instances.remove(instance)
        if instance.import_error is not None:
            self._cache_import_failure(instance)
        self._wake()
        if self._capacity is not None:
            self._capacity.discharge(instance)  # tells every pool of the node

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

    def _retire_idle(self, instance: Instance) -> None:
        self._sizing.not_idle(instance)
        self._instances.remove(instance)
        closing = asyncio.ensure_future(instance.close())
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)
        self._wake()

    async def _shutdown(self, grace_s: float) -> None:
        self._stopped = True
        self._sizing.stop()
        self._wake()
        instances = list(self._instances)
        self._instances.clear()  # the list is shared with the sizing: emptied, not replaced
        await asyncio.gather(*(i.terminate(grace_s) for i in instances), *self._closing)
        await self._sizing.settled()
        if self._forker is not None:  # after its instances: their exit statuses come from it
            await self._forker.stop()
        if self._forker_start is not None:  # one that had not begun sees `_stopped` and ends
            await asyncio.gather(self._forker_start, return_exceptions=True)
        if self._capacity is not None:
            self._capacity.unregister(self)
