"""An instance's OS process as the parent sees it: how it starts (argv, clean environment, own
process group, resource limits, optional user, four pipes; `spawn_instance` here, or forked by a
`forkserver.ForkServer`), its frames in and out, its output, signals to its group, its memory, and
its exit."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pwd
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import orjson

import asyncfn
from asyncfn.domain.models import FunctionSpec
from asyncfn.domain.outcomes import InstanceExited, Resources
from asyncfn.runtime import protocol
from asyncfn.runtime.launch import format_limits
from asyncfn.runtime.logs import OnLine, OutputCapture

logger = logging.getLogger(__name__)

DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
EXIT_GRACE_S = 1.0
"""How long an instance may take to exit once its control pipe has closed."""
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
_READ_CHUNK = 1 << 18
MAX_OPEN_FILES_DEFAULT = 4096
AS_PER_MEMORY_MB = 4
AS_HEADROOM_MB = 1024
"""With `rlimit_as`, an instance may map AS_PER_MEMORY_MB x memory_mb + AS_HEADROOM_MB MiB."""


@dataclass(frozen=True, slots=True)
class RunAs:
    """The user instances run as (`Settings.instance_user` resolved)."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str


def resolve_user(user: str) -> RunAs:
    """A user by name or uid, with its primary and supplementary groups; LookupError naming
    it when the host has no such user."""
    try:
        entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
    except KeyError:
        raise LookupError(f"instance user {user!r} does not exist on this host") from None
    groups = tuple(os.getgrouplist(entry.pw_name, entry.pw_gid))
    return RunAs(entry.pw_name, entry.pw_uid, entry.pw_gid, groups, entry.pw_dir)


@dataclass(frozen=True, slots=True)
class InstanceLimits:
    """What the node imposes on every instance besides memory_mb and timeout_s: no core dumps,
    at most `max_open_files` descriptors, with `rlimit_as` an address-space cap, and with
    `run_as` another user.

    RLIMIT_AS is off by default: CPython, numpy and glibc's per-thread malloc arenas map far
    more virtual memory than they touch, so a cap near memory_mb fails sound programs. The
    memory_mb limit is enforced on resident memory instead (the instance's RSS sampler).
    """

    max_open_files: int = MAX_OPEN_FILES_DEFAULT
    rlimit_as: bool = False
    run_as: RunAs | None = None

    def rlimits(self, memory_mb: int) -> dict[str, int]:
        """The launcher's limits for a function of `memory_mb` (see `runtime.launch`)."""
        limits = {"core": 0, "nofile": self.max_open_files}
        if self.rlimit_as:
            limits["as"] = (memory_mb * AS_PER_MEMORY_MB + AS_HEADROOM_MB) << 20
        return limits


Reap = Callable[[Callable[[int | None], None]], None]
"""Called once an instance's pidfd says it exited: hands its returncode (Popen's convention, -N
for signal N; None when unknown) to the callback, now or a little later."""


@dataclass(frozen=True, slots=True)
class Spawned:
    """A started instance and the parent's ends of its pipes (all owned by the caller)."""

    pid: int
    pidfd: int
    """Readable once the process has exited."""
    control_read: int
    control_write: int
    stdout: int
    stderr: int
    reap: Reap
    lifeline: int = -1
    """A forked instance's lifeline pipe, write end: the kernel SIGKILLs the instance's group
    once it is closed (see `lifeline.die_with_pipe`); closed when the instance is reaped."""

    @property
    def forked(self) -> bool:
        return self.lifeline >= 0


def asyncfn_root() -> str:
    """The directory holding the `asyncfn` package: the instance's PYTHONPATH entry."""
    return os.path.dirname(os.path.dirname(os.path.abspath(asyncfn.__file__ or "")))


def instance_env(spec: FunctionSpec, base_env: Mapping[str, str]) -> dict[str, str]:
    """PATH, HOME and LANG from `base_env` (the node's Settings), what the bootstrap needs, and
    `spec.env`: nothing else of the node's environment reaches an instance."""
    source = base_env
    env = {"PATH": source.get("PATH", DEFAULT_PATH), "LANG": source.get("LANG", "C.UTF-8")}
    if "HOME" in source:
        env["HOME"] = source["HOME"]
    env.update(spec.env)
    user_path = spec.env.get("PYTHONPATH")
    env["PYTHONPATH"] = asyncfn_root() + (os.pathsep + user_path if user_path else "")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def instance_argv(
    spec: FunctionSpec,
    code_dir: Path | None,
    read_fd: int,
    write_fd: int,
    limits: InstanceLimits | None = None,
    *,
    fork_server: bool = False,
) -> list[str]:
    """`python -m asyncfn.runtime.launch LIMITS ...` for this function: the launcher sets the
    limits, then runs the bootstrap with the rest (see bootstrap's docstring). A fork server's
    bootstrap gets `--fork-server` and its socket as `read_fd` (`write_fd` is -1)."""
    if spec.runtime == "command":
        target = orjson.dumps(list(spec.command or ())).decode()
    else:
        target = spec.handler or ""
    rlimits = (limits or InstanceLimits()).rlimits(spec.memory_mb)
    return [
        sys.executable,
        "-m",
        "asyncfn.runtime.launch",
        format_limits(rlimits),
        *(["--fork-server"] if fork_server else []),
        str(os.getpid()),
        str(read_fd),
        str(write_fd),
        str(spec.instance_concurrency),
        spec.runtime,
        target,
        str(code_dir) if code_dir is not None else "",
    ]


def launch_process(
    spec: FunctionSpec,
    argv: list[str],
    *,
    cwd: Path,
    base_env: Mapping[str, str],
    limits: InstanceLimits,
    stdout: int | None,
    stderr: int | None,
    pass_fds: tuple[int, ...],
) -> subprocess.Popen[bytes]:
    """Popen `argv` as an instance (or a fork server) runs: stdin /dev/null, the clean
    environment, `cwd`, its own process group, and `limits.run_as`'s user and groups."""
    run_as = limits.run_as
    env = instance_env(spec, base_env)
    if run_as is not None and "HOME" not in spec.env:
        env["HOME"] = run_as.home
    return subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        pass_fds=pass_fds,
        env=env,
        cwd=cwd,
        process_group=0,
        user=run_as.uid if run_as is not None else None,
        group=run_as.gid if run_as is not None else None,
        extra_groups=list(run_as.groups) if run_as is not None else None,
    )


def spawn_instance(
    spec: FunctionSpec,
    *,
    code_dir: Path | None,
    cwd: Path,
    base_env: Mapping[str, str],
    limits: InstanceLimits | None = None,
) -> Spawned:
    """Start an instance in its own process group (pgid == pid); raises OSError if it cannot.

    Popen plus a pidfd rather than asyncio's subprocess: the exit is watched by the loop itself
    (no child-watcher thread per instance, the same under uvloop). Call it from the event loop's
    thread: the instance's PR_SET_PDEATHSIG follows the thread that forked it.

    `limits.run_as` becomes Popen's user/group/extra_groups, which the child sets up in C
    between fork and exec. The rlimits cannot go that way: a `preexec_fn` runs Python in the
    forked child of a threaded node (not fork-safe), and `prlimit(pid)` from the parent races
    with the handler's import. So the instance starts as `python -m asyncfn.runtime.launch`,
    which sets its own limits (hard too) and then runs the bootstrap in the same interpreter:
    no extra exec, and no handler code runs before the limits hold.
    """
    limits = limits or InstanceLimits()
    parent_read, child_write = os.pipe()
    child_read, parent_write = os.pipe()
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    parent_fds = (parent_read, parent_write, out_read, err_read)
    try:
        process = launch_process(
            spec,
            instance_argv(spec, code_dir, child_read, child_write, limits),
            cwd=cwd,
            base_env=base_env,
            limits=limits,
            stdout=out_write,
            stderr=err_write,
            pass_fds=(child_read, child_write),
        )
    except BaseException:
        for fd in parent_fds:
            os.close(fd)
        raise
    finally:
        for fd in (child_read, child_write, out_write, err_write):
            os.close(fd)
    try:
        pidfd = os.pidfd_open(process.pid)
    except BaseException:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        for fd in parent_fds:
            os.close(fd)
        raise

    def reap(done: Callable[[int | None], None]) -> None:
        done(process.wait())  # it has exited: immediate, and sets returncode

    return Spawned(process.pid, pidfd, parent_read, parent_write, out_read, err_read, reap)


class InstanceProcess:
    """A spawned instance's pipes and lifetime: decoded frames go to `on_frame`, output lines to
    `on_line`, and `on_exit` runs once the process is reaped and its pipes are drained."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        spawned: Spawned,
        *,
        on_frame: Callable[[protocol.Message], None],
        on_line: OnLine,
        on_exit: Callable[[], None],
    ) -> None:
        self._loop = loop
        self._reap = spawned.reap
        self._lifeline = spawned.lifeline
        self.forked = spawned.forked
        self.pid = spawned.pid
        self.returncode: int | None = None
        """Set once the process is reaped (see `Reap`)."""
        self.exited = False
        self.note = ""
        """Why the parent killed it, when the process itself cannot say (a bad frame)."""
        self._on_frame = on_frame
        self._on_exit = on_exit
        self._decoder = protocol.FrameDecoder()
        self._exit_timer: asyncio.TimerHandle | None = None
        self._pidfd = spawned.pidfd
        self._control = spawned.control_read
        os.set_blocking(self._control, False)
        loop.add_reader(self._control, self._on_control)
        self._writer = protocol.PipeWriter(loop, spawned.control_write)
        self.output = OutputCapture(loop, spawned.stdout, spawned.stderr, on_line)
        loop.add_reader(self._pidfd, self._on_reaped)

    def send(self, frame: bytes) -> None:
        self._writer.write(frame)

    def end_input(self) -> None:
        """Close the control pipe's parent end: the instance reads end of file and exits."""
        self._writer.close()

    def signal_group(self, sig: int) -> None:
        """Signal every process in the instance's group (nothing once it is reaped)."""
        if not self.exited:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, sig)

    def rss_mb(self, extra_pids: list[int]) -> float:
        """Resident memory of the instance plus `extra_pids` (its command children), from /proc."""
        return sum(_rss_bytes(pid) for pid in (self.pid, *extra_pids)) / (1 << 20)

    def _on_control(self) -> bool:
        """Read and dispatch what the control pipe holds; False when there was nothing."""
        try:
            data = os.read(self._control, _READ_CHUNK)
        except BlockingIOError:
            return False
        if not data:
            self._close_control()
            if self._exit_timer is None:
                self._exit_timer = self._loop.call_later(
                    EXIT_GRACE_S, self.signal_group, signal.SIGKILL
                )
            return False
        try:
            frames = self._decoder.feed(data)
        except (protocol.ProtocolError, orjson.JSONDecodeError) as exc:
            logger.error("instance pid %d sent a bad frame (%s); killing it", self.pid, exc)
            self.note = f"bad frame from the instance: {exc}"
            self._close_control()
            self.signal_group(signal.SIGKILL)
            return False
        for header, _ in frames:
            self._on_frame(header)
        return True

    def _on_reaped(self) -> None:
        self._loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._reap(self._finish)

    def _finish(self, returncode: int | None) -> None:
        self.returncode = returncode
        while self._control >= 0 and self._on_control():  # frames it sent before exiting
            pass
        self.output.close()  # what is left goes to the attempts still running
        self._close_control()
        self._writer.close()
        if self._exit_timer is not None:
            self._exit_timer.cancel()
        self.signal_group(signal.SIGKILL)  # whatever the instance left behind in its group
        if self._lifeline >= 0:
            os.close(self._lifeline)
            self._lifeline = -1
        self.exited = True
        self._on_exit()

    def _close_control(self) -> None:
        if self._control >= 0:
            self._loop.remove_reader(self._control)
            os.close(self._control)
            self._control = -1


def exit_outcome(
    process: InstanceProcess | None, note: str, duration_ms: float, max_rss_mb: float
) -> InstanceExited:
    """How an attempt ended when its instance exited under it (or never started: `note`)."""
    code = process.returncode if process is not None else None
    tail = list(process.output.stderr_tail) if process is not None else []
    note = note or (process.note if process is not None else "")
    if note:
        tail.append(note)
    return InstanceExited(
        exit_code=code if code is None or code >= 0 else None,
        signal=-code if code is not None and code < 0 else None,
        stderr_tail="\n".join(tail),
        duration_ms=duration_ms,
        resources=Resources(max_rss_mb=max_rss_mb),
    )


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return 0
