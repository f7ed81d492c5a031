"""Parent side of one instance: hands it attempts, enforces their deadlines and the memory limit,
and turns what happens (a result, a deadline, memory, an exit) into each attempt's Outcome."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from asyncfn.domain.models import FunctionSpec
from asyncfn.domain.outcomes import (
    InstanceExited,
    Outcome,
    OutOfMemory,
    Raised,
    Resources,
    Stopped,
    Succeeded,
    TimedOut,
)
from asyncfn.runtime import protocol
from asyncfn.runtime.forkserver import ForkServer, start_process
from asyncfn.runtime.logs import split_lines
from asyncfn.runtime.process import EXIT_GRACE_S, InstanceLimits, InstanceProcess, exit_outcome

logger = logging.getLogger(__name__)

SAMPLE_INTERVAL_S = 0.25


@dataclass(frozen=True, slots=True)
class Assignment:
    """One attempt of a task, as the engine hands it to a pool."""

    row: int
    task_id: str
    function: str
    attempt: int
    payload: bytes
    deadline: float  # POSIX seconds
    checkpoint: Any = None
    api_url: str | None = None
    token: str | None = field(default=None, repr=False)
    """A task token for `context.client` (scoped to the task's tenant, never a user's key)."""
    attributes: dict[str, str] | None = None
    """The task's CloudEvents context: `context.attributes`, or `CE_*` for a command."""


class RuntimeListener(Protocol):
    """What the runtime tells the engine while attempts run (outcomes come back from `run`)."""

    def on_started(self, row: int, attempt: int, instance_id: str, at: float) -> None: ...
    def on_log(self, row: int, attempt: int, stream: str, line: str, at: float) -> None: ...
    def on_progress(self, row: int, attempt: int, fraction: float, message: str | None) -> None: ...
    def on_checkpoint(self, row: int, attempt: int, checkpoint: Any) -> None: ...


@dataclass(eq=False, slots=True)
class _Attempt:
    assignment: Assignment
    frame: bytes
    future: asyncio.Future[Outcome]
    registered_at: float
    timer: asyncio.TimerHandle | None = None
    started_at: float | None = None
    fate: Outcome | None = None
    """An outcome decided before the process is reaped: timed out, out of memory, stopped."""
    due: float = 0.0
    """The deadline on the loop's clock; a suspension moves it by its length."""
    left_s: float = 0.0
    """While suspended: the time the attempt had left."""
    child_pids: list[int] = field(default_factory=list)

    def elapsed_ms(self) -> float:
        return (time.monotonic() - (self.started_at or self.registered_at)) * 1000.0


State = Literal["new", "starting", "ready", "exited"]


class Instance:
    """One OS process hosting one function; runs up to `spec.instance_concurrency` attempts.

    `start()` forks it from `forker` (when given and alive) or spawns it; `run()` waits until
    it is ready and returns the attempt's outcome, never raising for what the task did. An exit
    ends every attempt it held, and the instance with them: the pool replaces it.
    """

    def __init__(
        self,
        spec: FunctionSpec,
        listener: RuntimeListener,
        *,
        cwd: Path,
        code_dir: Path | None = None,
        base_env: Mapping[str, str],
        limits: InstanceLimits | None = None,
        on_exit: Callable[[Instance], None] | None = None,
        forker: ForkServer | None = None,
    ) -> None:
        self.spec = spec
        self.instance_id = uuid.uuid4().hex[:12]
        self.state: State = "new"
        self.import_error: dict[str, Any] | None = None
        self.reserved = 0
        """Slots the pool has promised to attempts (the pool's bookkeeping)."""
        self.retiring = False
        """Takes no new attempts: it is being killed or closed, or a task raised MemoryError."""
        self.suspended = False
        self._listener = listener
        self._cwd = cwd
        self._code_dir = code_dir
        self._base_env = base_env
        self._limits = limits
        self._on_exit = on_exit
        self._forker = forker
        self.spawned_at: float | None = None
        """Loop time `start()` began; `ready_at` (loop time of the ready frame) minus this is the
        cold start."""
        self.ready_at: float | None = None
        self._attempts: dict[int, _Attempt] = {}
        self._process: InstanceProcess | None = None
        self._sampler: asyncio.TimerHandle | None = None
        self._peak_mb = 0.0
        self._exit_note = ""
        self._loop = asyncio.get_running_loop()
        self._ready: asyncio.Future[bool] = self._loop.create_future()
        self._exited: asyncio.Future[None] = self._loop.create_future()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def pgid(self) -> int | None:
        return self.pid  # the instance leads its own process group

    @property
    def returncode(self) -> int | None:
        return self._process.returncode if self._process is not None else None

    @property
    def forked(self) -> bool:
        return self._process is not None and self._process.forked

    @property
    def cold_start_ms(self) -> float | None:
        if self.ready_at is None or self.spawned_at is None:
            return None
        return (self.ready_at - self.spawned_at) * 1000.0

    @property
    def load(self) -> int:
        """Attempts on this instance now (running, or waiting for it to be ready)."""
        return len(self._attempts)

    def start(self) -> None:
        """Fork or spawn the process and watch its pipes; readiness comes later (`wait_ready`)."""
        if self.state != "new":
            return
        self.state = "starting"
        self.spawned_at = self._loop.time()
        try:
            spawned = start_process(
                self._forker,
                self.spec,
                code_dir=self._code_dir,
                cwd=self._cwd,
                base_env=self._base_env,
                limits=self._limits,
            )
        except OSError as exc:
            self._exit_note = f"cannot start the instance: {exc}"
            self._mark_exited()
            return
        self._process = InstanceProcess(
            self._loop,
            spawned,
            on_frame=self._dispatch,
            on_line=self._on_output,
            on_exit=self._mark_exited,
        )

    async def wait_ready(self) -> bool:
        """True once the handler is imported; False if the instance failed to get there."""
        return await asyncio.shield(self._ready)

    async def run(self, a: Assignment) -> Outcome:
        """Run one attempt here and return how it ended."""
        if a.row in self._attempts:
            raise ValueError(f"row {a.row} is already running on instance {self.instance_id}")
        message = protocol.run_message(
            task_id=a.task_id,
            row=a.row,
            attempt=a.attempt,
            function=a.function,
            deadline=a.deadline,
            checkpoint=a.checkpoint,
            api_url=a.api_url,
            token=a.token,
            attributes=a.attributes,
        )
        frame = protocol.encode(message, a.payload)
        attempt = _Attempt(a, frame, self._loop.create_future(), time.monotonic())
        if self.import_error is not None:
            return self.import_failure()
        if self.state == "exited":
            return self._exit_outcome(attempt)
        left_s = a.deadline - time.time()
        if left_s <= 0:
            return TimedOut(timeout_s=float(self.spec.timeout_s), duration_ms=0.0)
        attempt.due = self._loop.time() + left_s
        attempt.timer = self._loop.call_at(attempt.due, self._on_deadline, attempt)
        self._attempts[a.row] = attempt
        if self.state == "ready" and not self.suspended:
            self._send(attempt)
        try:
            return await attempt.future  # not shielded: one loop turn less per attempt
        except asyncio.CancelledError:
            if a.row in self._attempts:  # abandoned: it must not run on unwatched
                attempt.fate = Stopped(duration_ms=attempt.elapsed_ms())
                self.kill()
            raise

    def kill(self) -> None:
        """SIGKILL the whole process group; `run` callers get their outcomes at the exit."""
        self.retiring = True
        self._signal(signal.SIGKILL)

    async def terminate(self, grace_s: float) -> None:
        """SIGTERM the group, SIGKILL it after `grace_s`; returns once the process is reaped."""
        self.retiring = True
        self._signal(signal.SIGTERM)
        self._signal(signal.SIGCONT)
        await self._wait_exit(grace_s)

    async def close(self, grace_s: float = EXIT_GRACE_S) -> None:
        """Let an idle instance exit by itself (its control pipe ends); kill it after `grace_s`."""
        self.retiring = True
        if self._process is not None:
            self._process.end_input()
        await self._wait_exit(grace_s)

    async def stop_attempt(self, row: int, grace_s: float) -> bool:
        """End one attempt on purpose (outcome Stopped) by terminating its instance."""
        attempt = self._attempts.get(row)
        if attempt is None:
            return False
        resources = Resources(max_rss_mb=self._peak_mb)
        attempt.fate = Stopped(duration_ms=attempt.elapsed_ms(), resources=resources)
        await self.terminate(grace_s)
        return True

    def suspend(self) -> None:
        """SIGSTOP the group; the deadlines of its attempts pause with it (a handler's
        `context.deadline` keeps its first value)."""
        if self.suspended or self.state not in ("starting", "ready"):
            return
        self._signal(signal.SIGSTOP)
        self.suspended = True
        now = self._loop.time()
        for attempt in self._attempts.values():
            if attempt.timer is not None:
                attempt.timer.cancel()
                attempt.timer = None
            attempt.left_s = max(0.0, attempt.due - now)

    def resume(self) -> None:
        """SIGCONT the group; each deadline gets back the time it had left."""
        if not self.suspended or self.state == "exited":
            return
        self.suspended = False
        self._signal(signal.SIGCONT)
        now = self._loop.time()
        for attempt in list(self._attempts.values()):
            attempt.due = now + attempt.left_s
            attempt.timer = self._loop.call_at(attempt.due, self._on_deadline, attempt)
            if attempt.started_at is None and self.state == "ready":
                self._send(attempt)

    def import_failure(self, duration_ms: float = 0.0) -> Raised:
        """The outcome of every attempt given to a function whose handler does not import."""
        error = self.import_error or {}
        return Raised(
            type="HandlerImportError",
            message=f"{error.get('type')}: {error.get('message')}",
            traceback=error.get("traceback"),
            duration_ms=duration_ms,
            retryable=False,
        )

    # -- what the process tells us --------------------------------------------------------

    def _dispatch(self, header: protocol.Message) -> None:
        kind = header["kind"]
        if kind == protocol.READY:
            self._on_ready()
            return
        if kind == protocol.IMPORT_ERROR:
            self._on_import_error(header["error"])
            return
        attempt = self._attempts.get(header.get("row", -1))
        if attempt is None:
            return  # late news of an attempt that has ended
        a = attempt.assignment
        if kind == protocol.RESULT:
            self._on_result(attempt, header)
        elif kind == protocol.LOG:
            at = time.time()
            for line in split_lines(header["line"]):
                self._notify(self._listener.on_log, a.row, a.attempt, header["stream"], line, at)
        elif kind == protocol.PROGRESS:
            fraction, text = header["fraction"], header["message"]
            self._notify(self._listener.on_progress, a.row, a.attempt, fraction, text)
        elif kind == protocol.CHECKPOINT:
            self._notify(self._listener.on_checkpoint, a.row, a.attempt, header["checkpoint"])
        elif kind == protocol.SPAWNED:
            attempt.child_pids.append(header["pid"])
        else:
            logger.warning("instance %s sent an unknown message %r", self.instance_id, kind)

    def _on_ready(self) -> None:
        self.state = "ready"
        self.ready_at = self._loop.time()
        if not self._ready.done():
            self._ready.set_result(True)
        for attempt in list(self._attempts.values()):
            if attempt.started_at is None and not self.suspended:
                self._send(attempt)

    def _on_import_error(self, error: dict[str, Any]) -> None:
        self.import_error = error
        if not self._ready.done():
            self._ready.set_result(False)
        for attempt in list(self._attempts.values()):
            self._resolve(attempt, self.import_failure(attempt.elapsed_ms()))

    def _on_result(self, attempt: _Attempt, header: protocol.Message) -> None:
        if self._process is not None:
            self._process.output.drain()  # what the task printed before returning is its own
            self._process.output.flush()
        resources = Resources(cpu_ms=header["cpu_ms"], max_rss_mb=header["max_rss_mb"])
        duration_ms = attempt.elapsed_ms()
        if header["ok"]:
            self._resolve(attempt, Succeeded(header["result"], duration_ms, resources))
            return
        error = header["error"]
        if error["type"] == "OutOfMemory":
            self.retiring = True  # a MemoryError may leave the process in a poor state
        outcome = Raised(
            error["type"], error["message"], error["traceback"], duration_ms, resources
        )
        self._resolve(attempt, outcome)
        if self.retiring and not self._attempts and self._process is not None:
            self._process.end_input()

    def _on_output(self, stream: str, line: str, at: float) -> None:
        for attempt in self._attempts.values():  # the earliest running attempt owns the line
            if attempt.started_at is not None:
                a = attempt.assignment
                self._notify(self._listener.on_log, a.row, a.attempt, stream, line, at)
                return

    def _on_deadline(self, attempt: _Attempt) -> None:
        attempt.timer = None
        if attempt.future.done():
            return
        resources = Resources(max_rss_mb=self._peak_mb)
        attempt.fate = TimedOut(float(self.spec.timeout_s), attempt.elapsed_ms(), resources)
        self.kill()

    def _sample(self) -> None:
        """Every ~250 ms while attempts run: the instance's RSS against `spec.memory_mb`."""
        self._sampler = None
        running = [a for a in self._attempts.values() if a.started_at is not None]
        if not running or self._process is None or self.state == "exited":
            return
        rss_mb = self._process.rss_mb([pid for a in running for pid in a.child_pids])
        self._peak_mb = max(self._peak_mb, rss_mb)
        if rss_mb <= self.spec.memory_mb:
            self._sampler = self._loop.call_later(SAMPLE_INTERVAL_S, self._sample)
            return
        for attempt in running:
            attempt.fate = OutOfMemory(
                self.spec.memory_mb, rss_mb, attempt.elapsed_ms(), Resources(max_rss_mb=rss_mb)
            )
        self.kill()

    def _mark_exited(self) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
        self.state = "exited"
        for attempt in list(self._attempts.values()):
            self._resolve(attempt, attempt.fate or self._exit_outcome(attempt))
        if not self._ready.done():
            self._ready.set_result(False)
        self._exited.set_result(None)
        if self._on_exit is not None:
            self._on_exit(self)

    # -- plumbing -------------------------------------------------------------------------

    def _send(self, attempt: _Attempt) -> None:
        assert self._process is not None
        a = attempt.assignment
        attempt.started_at = time.monotonic()
        self._notify(self._listener.on_started, a.row, a.attempt, self.instance_id, time.time())
        self._process.send(attempt.frame)
        attempt.frame = b""
        if self._sampler is None:
            self._sampler = self._loop.call_later(SAMPLE_INTERVAL_S, self._sample)

    def _exit_outcome(self, attempt: _Attempt) -> InstanceExited:
        return exit_outcome(self._process, self._exit_note, attempt.elapsed_ms(), self._peak_mb)

    def _resolve(self, attempt: _Attempt, outcome: Outcome) -> None:
        if attempt.timer is not None:
            attempt.timer.cancel()
            attempt.timer = None
        self._attempts.pop(attempt.assignment.row, None)
        if not attempt.future.done():
            attempt.future.set_result(outcome)

    async def _wait_exit(self, grace_s: float) -> None:
        if self.state == "new":
            self._mark_exited()
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._exited), grace_s)
        except TimeoutError:
            self.kill()
            await asyncio.shield(self._exited)

    def _signal(self, sig: int) -> None:
        if self._process is not None:
            self._process.signal_group(sig)

    def _notify(self, method: Callable[..., None], *args: Any) -> None:
        try:
            method(*args)
        except Exception:
            logger.exception("runtime listener %s failed", getattr(method, "__name__", method))

    def __repr__(self) -> str:
        return (
            f"<Instance {self.instance_id} {self.spec.name} pid={self.pid} "
            f"{self.state} load={self.load}>"
        )
