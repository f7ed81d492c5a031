"""Process bookkeeping from /proc: descendants of a pid, their CPU time, and killing leftovers."""

from __future__ import annotations

import os
import signal
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (index 0 is the state)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return raw[raw.rfind(")") + 2 :].split()


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields is None:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def descendants(pid: int) -> dict[int, str]:
    """Every live descendant of `pid` mapped to its start time (to detect pid reuse later)."""
    children = _children_map()
    found: dict[int, str] = {}
    stack = list(children.get(pid, []))
    while stack:
        child = stack.pop()
        fields = _stat_fields(child)
        if fields is None or child in found:
            continue
        found[child] = fields[19]
        stack.extend(children.get(child, []))
    return found


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of `pid` and its live descendants (reaped children included)."""
    total = 0
    for member in [pid, *descendants(pid)]:
        fields = _stat_fields(member)
        if fields is not None:
            # utime, stime, cutime, cstime
            total += sum(int(f) for f in fields[11:15])
    return total / CLOCK_TICKS


def rss_mb(pid: int) -> float:
    """VmRSS of `pid` in MB (2**20 bytes); NaN when the process is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return float("nan")
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def kill_leftovers(procs: dict[int, str]) -> list[int]:
    """SIGKILL the processes of `procs` still alive with the same start time; answers their pids."""
    killed: list[int] = []
    for pid, started in procs.items():
        fields = _stat_fields(pid)
        if fields is None or fields[19] != started or fields[0] == "Z":
            continue
        try:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        except ProcessLookupError:
            pass
    return killed
