"""A function's fork server, as the node sees it: one long-lived process per pool that has the
handler (or, for `command` functions, asyncfn's bootstrap) imported, and forks an instance in
about a millisecond where spawning one costs ~80 ms. Also `start_process`, the one place that
chooses between forking and spawning.

The server is started like an instance (`process.launch_process`: clean environment, cwd,
rlimits through the launcher, run-as user, own process group, PR_SET_PDEATHSIG to the node) and
runs `bootstrap.serve_forks`. Node and server talk over a SOCK_SEQPACKET unix socket, one orjson
message per packet:

- node → server: `fork`, carrying the child's ends of the instance's pipes (SCM_RIGHTS);
- server → node: `ready` once (with `import_error`, None when the code imported), then
  `forked` (with a pidfd for the child) or `fork_failed` per request, and `exited` (pid and
  returncode) whenever it reaps an instance.

A forked instance is the server's child, not the node's, yet must die with the node and outlive
the server: its lifeline is a pipe whose write end only the node holds (see `lifeline`). Its
exit is seen on the node's pidfd as for a spawned one; the exit status comes from the server's
`exited` report, waited for up to EXIT_REPORT_WAIT_S. With the server gone the status is
unknown: `InstanceProcess.returncode` is None (`InstanceExited` then has neither exit_code nor
signal).

A fork request is answered synchronously: the server forks in ~1 ms, less than Popen blocks the
loop for a spawn (fork, exec, and a wait for the exec), and a server that has not answered within
FORK_TIMEOUT_S is declared failed. A failed server is reported once (logger.error, `failure`)
and not restarted: `start_process` then spawns instances as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson

from asyncfn.domain.models import FunctionSpec
from asyncfn.runtime.bootstrap import FORK_FDS
from asyncfn.runtime.process import (
    InstanceLimits,
    Spawned,
    instance_argv,
    launch_process,
    spawn_instance,
)

logger = logging.getLogger(__name__)

FORK_TIMEOUT_S = 2.0
"""How long a fork request may go unanswered before the server is declared failed."""
EXIT_REPORT_WAIT_S = 2.0
"""How long a forked instance's exit may go unreported before its status is taken as unknown."""
STOP_GRACE_S = 1.0
_MAX_MESSAGE = 1 << 16

Done = Callable[[int | None], None]


class ForkServer:
    """One function's fork server (see the module docstring). `start()` it, fork instances
    through `start_process(server, ...)`, `stop()` it after the instances it forked."""

    def __init__(
        self,
        spec: FunctionSpec,
        *,
        cwd: Path,
        code_dir: Path | None = None,
        base_env: Mapping[str, str],
        limits: InstanceLimits | None = None,
    ) -> None:
        self.spec = spec
        self._cwd = cwd
        self._code_dir = code_dir
        self._base_env = base_env
        self._limits = limits or InstanceLimits()
        self.failure: str | None = None
        """Why the server is not running when it should be (it crashed, exited, never started,
        stopped answering); set once, and logged once."""
        self.import_error: dict[str, Any] | None = None
        """The handler's import error: the server runs, and its instances report it."""
        self._process: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._pidfd = -1
        self._ready: asyncio.Future[None] | None = None
        self._exited: asyncio.Future[None] | None = None
        self._stopping = False
        self._codes: dict[int, int] = {}
        """Exit statuses reported before their instance asked for them."""
        self._waiting: dict[int, tuple[Done, asyncio.TimerHandle]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def alive(self) -> bool:
        """Ready to fork: started, answered ready, not failed or stopped."""
        return (
            self._sock is not None
            and self._ready is not None
            and self._ready.done()
            and self.failure is None
            and not self._stopping
        )

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def start(self) -> None:
        """Spawn the server and wait until it has loaded the code (or failed to: `import_error`).
        A server that cannot start or dies first is reported (`failure`), not raised."""
        if self._process is not None or self.failure is not None:
            return
        loop = self._loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._process = launch_process(
                self.spec,
                instance_argv(
                    self.spec, self._code_dir, theirs.fileno(), -1, self._limits, fork_server=True
                ),
                cwd=self._cwd,
                base_env=self._base_env,
                limits=self._limits,
                stdout=subprocess.DEVNULL,
                stderr=None,  # the node's: a server that crashes says why in the node's log
                pass_fds=(theirs.fileno(),),
            )
            self._pidfd = os.pidfd_open(self._process.pid)
        except OSError as exc:
            ours.close()
            self._fail(f"cannot start: {exc}")
            if self._process is not None:
                self._process.kill()
                self._process.wait()
            return
        finally:
            theirs.close()
        ours.setblocking(False)
        self._sock = ours
        self._ready = loop.create_future()
        self._exited = loop.create_future()
        loop.add_reader(ours, self._on_messages)
        loop.add_reader(self._pidfd, self._on_server_exit)
        await asyncio.shield(self._ready)

    async def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """Close the socket (the server exits; instances it forked live on, but their exit
        statuses are no longer known); SIGKILL it if it has not exited after `grace_s`."""
        if self._process is None or self._stopping:
            return
        self._stopping = True
        self._close_socket()
        if self._exited is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._exited), grace_s)
        except TimeoutError:
            self._kill()
            await asyncio.shield(self._exited)

    def fork(self) -> Spawned:
        """Fork an instance now (blocks the loop for the round trip, ~1 ms); OSError if the
        server cannot (it is then marked failed when that is why)."""
        if not self.alive or self._sock is None:
            raise OSError(f"the fork server is not running ({self.failure or 'stopped'})")
        parent_read, child_write = os.pipe()
        child_read, parent_write = os.pipe()
        out_read, out_write = os.pipe()
        err_read, err_write = os.pipe()
        life_read, life_write = os.pipe()
        ours = (parent_read, parent_write, out_read, err_read, life_write)
        theirs = [child_read, child_write, out_write, err_write, life_read]
        assert len(theirs) == FORK_FDS
        try:
            socket.send_fds(self._sock, [orjson.dumps({"kind": "fork"})], theirs)
            pid, pidfd = self._forked()
        except BaseException:
            for fd in ours:
                os.close(fd)
            raise
        finally:
            for fd in theirs:
                os.close(fd)
        return Spawned(
            pid, pidfd, parent_read, parent_write, out_read, err_read, self._reaper(pid), life_write
        )

    # -- messages from the server -----------------------------------------------------------

    def _forked(self) -> tuple[int, int]:
        """Wait for the answer to the fork request just sent, handling what comes before it."""
        assert self._sock is not None
        deadline = time.monotonic() + FORK_TIMEOUT_S
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(
                    self._sock, _MAX_MESSAGE, 1, socket.MSG_CMSG_CLOEXEC
                )
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0:
                    self._fail(f"did not answer a fork request within {FORK_TIMEOUT_S} s")
                    self._kill()
                    raise OSError("the fork server did not answer") from None
                select.select([self._sock], [], [], left)
                continue
            if not data:
                self._close_socket()
                raise OSError("the fork server closed its socket")
            message = orjson.loads(data)
            if message["kind"] == "forked" and fds:
                return int(message["pid"]), fds[0]
            if message["kind"] == "fork_failed":
                raise OSError(f"the fork server could not fork: {message['error']}")
            self._handle(message, fds)

    def _on_messages(self) -> None:
        while self._sock is not None:
            try:
                data, fds, _, _ = socket.recv_fds(
                    self._sock, _MAX_MESSAGE, 1, socket.MSG_CMSG_CLOEXEC
                )
            except BlockingIOError:
                return
            if not data:
                self._close_socket()  # the process's exit says why (`_on_server_exit`)
                return
            self._handle(orjson.loads(data), fds)

    def _handle(self, message: dict[str, Any], fds: list[int]) -> None:
        for fd in fds:  # a late `forked` after a timeout: that instance is not ours to watch
            os.close(fd)
        kind = message["kind"]
        if kind == "exited":
            pid, code = int(message["pid"]), int(message["code"])
            waiting = self._waiting.pop(pid, None)
            if waiting is None:
                self._codes[pid] = code
            else:
                waiting[1].cancel()
                waiting[0](code)
        elif kind == "ready":
            self.import_error = message.get("import_error")
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(None)
        else:
            logger.warning("fork server of %s sent an unexpected %r", self.spec.name, kind)

    def _on_server_exit(self) -> None:
        assert self._process is not None and self._loop is not None
        self._loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._pidfd = -1
        code = self._process.wait()
        if not self._stopping:
            how = f"killed by signal {-code}" if code < 0 else f"exited with status {code}"
            self._fail(how)
        self._close_socket()
        if self._ready is not None and not self._ready.done():
            self._ready.set_result(None)
        for done, timer in self._waiting.values():
            timer.cancel()
            done(None)
        self._waiting.clear()
        self._codes.clear()
        if self._exited is not None:
            self._exited.set_result(None)

    # -- plumbing ---------------------------------------------------------------------------

    def _reaper(self, pid: int) -> Callable[[Done], None]:
        def reap(done: Done) -> None:
            if pid in self._codes:
                done(self._codes.pop(pid))
            elif self._pidfd < 0 or self._loop is None:
                done(None)  # the server is gone: nobody can tell how the instance ended
            else:
                timer = self._loop.call_later(EXIT_REPORT_WAIT_S, self._unreported, pid)
                self._waiting[pid] = (done, timer)

        return reap

    def _unreported(self, pid: int) -> None:
        waiting = self._waiting.pop(pid, None)
        if waiting is not None:
            waiting[0](None)

    def _fail(self, why: str) -> None:
        if self.failure is None:
            self.failure = why
            logger.error(
                "fork server of function %s (pid %s) failed: %s; its instances are spawned "
                "from now on (slower cold starts)",
                self.spec.name,
                self.pid,
                why,
            )

    def _kill(self) -> None:
        if self._process is not None and self._pidfd >= 0:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)

    def _close_socket(self) -> None:
        if self._sock is not None:
            if self._loop is not None:
                self._loop.remove_reader(self._sock)
            self._sock.close()
            self._sock = None

    def __repr__(self) -> str:
        state = "alive" if self.alive else (self.failure or "not running")
        return f"<ForkServer {self.spec.name} pid={self.pid} {state}>"


def start_process(
    forker: ForkServer | None,
    spec: FunctionSpec,
    *,
    code_dir: Path | None,
    cwd: Path,
    base_env: Mapping[str, str],
    limits: InstanceLimits | None = None,
) -> Spawned:
    """An instance forked from `forker` when it is alive, else spawned; OSError if neither."""
    if forker is not None and forker.alive:
        try:
            return forker.fork()
        except OSError as exc:
            logger.warning("cannot fork an instance of %s (%s); spawning it", spec.name, exc)
    return spawn_instance(spec, code_dir=code_dir, cwd=cwd, base_env=base_env, limits=limits)
