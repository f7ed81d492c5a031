"""Ties a process's life to its parent's (Linux PR_SET_PDEATHSIG): when the parent dies, it dies."""

from __future__ import annotations

import ctypes
import functools
import os
import signal
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


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
