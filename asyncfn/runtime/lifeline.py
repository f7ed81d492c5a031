"""Ties a process's life to the node's: when the node dies, its instances die with it.

Two ways, for the two ways an instance starts. A spawned instance is the node's child:
PR_SET_PDEATHSIG (`die_with_parent`). A forked instance is the fork server's child, and must
outlive a crashing fork server, so PR_SET_PDEATHSIG (which follows the parent) will not do: the
node keeps the write end of a pipe per instance and the instance asks the kernel to SIGKILL its
process group when that end closes (`die_with_pipe`), which happens when the node exits however
it exits.
"""

from __future__ import annotations

import ctypes
import fcntl
import functools
import os
import select
import signal
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1
_F_SETSIG = getattr(fcntl, "F_SETSIG", 10)


@functools.cache
def _prctl() -> Callable[..., int]:
    """libc's prctl, looked up once: a forked child then only calls it (no dlopen after fork)."""
    prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    return prctl


def die_with_parent(parent_pid: int) -> None:
    """Ask the kernel to SIGKILL this process when its parent exits; exit now if it already did.

    Call it first thing in a child: a parent that died before the call would otherwise leave
    the child orphaned for good, so the parent's pid is checked after the request. The kernel
    ties the signal to the parent *thread* that forked the child, so spawn from a thread that
    lives as long as the parent (the event loop's, a long-lived worker's).
    """
    if _prctl()(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl(PR_SET_PDEATHSIG): {os.strerror(errno)}")
    if os.getppid() != parent_pid:
        os._exit(1)


def die_with_pipe(read_fd: int) -> None:
    """Ask the kernel to SIGKILL this process's group once the pipe `read_fd` reads from has no
    writer left; exit now if it has none already.

    The pipe's last writer closing raises the reader's async I/O signal (O_ASYNC), and F_SETSIG
    makes that signal SIGKILL, sent to the owner F_SETOWN names: this process group. No thread
    watches anything, and a stopped (SIGSTOP) group is killed all the same. The descriptor must
    be this process's own open file (one owner per open file): the node makes a pipe for each
    instance. Never read from it or write to it; it is not inherited across exec.
    """
    os.set_inheritable(read_fd, False)
    fcntl.fcntl(read_fd, fcntl.F_SETOWN, -os.getpgid(0))
    fcntl.fcntl(read_fd, _F_SETSIG, signal.SIGKILL)
    flags = fcntl.fcntl(read_fd, fcntl.F_GETFL)
    fcntl.fcntl(read_fd, fcntl.F_SETFL, flags | os.O_ASYNC | os.O_NONBLOCK)
    poll = select.poll()
    poll.register(read_fd, select.POLLIN)
    if poll.poll(0):  # the writer closed before the request: no signal will come
        os._exit(1)
