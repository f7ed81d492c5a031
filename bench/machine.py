"""A description of the machine the benchmark runs on: CPUs, memory, Python, kernel, wrk."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import time
from pathlib import Path


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    found = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return found.group(1).strip() if found else "unknown"


def _memory_gib() -> float:
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return float("nan")
    found = re.search(r"^MemTotal:\s*(\d+) kB", text, re.MULTILINE)
    return int(found.group(1)) / 2**20 if found else float("nan")


def _python_version(python: str) -> str:
    try:
        done = subprocess.run(
            [python, "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip()


def _wrk_version() -> str:
    exe = shutil.which("wrk")
    if exe is None:
        return "missing"
    done = subprocess.run([exe, "-v"], capture_output=True, text=True, timeout=10, check=False)
    first = (done.stdout or done.stderr).splitlines()
    return first[0].strip() if first else "unknown"


def _cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies over all CPUs since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def busy_cpu_seconds() -> float:
    """CPU seconds all CPUs have spent busy since boot."""
    return _cpu_times()[0] / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """CPU seconds of this process and its reaped children (wrk)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def busy_percent(window_s: float = 1.0) -> float:
    """How busy all CPUs are right now (0 to 100), sampled over `window_s`."""
    try:
        busy0, total0 = _cpu_times()
        time.sleep(window_s)
        busy1, total1 = _cpu_times()
    except (OSError, ValueError, IndexError):
        return float("nan")
    return 100.0 * (busy1 - busy0) / max(total1 - total0, 1)


def describe(python: str) -> dict[str, str | int | float]:
    """The machine and tool versions, for the report and the JSON results."""
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": _cpu_model(),
        "memory_gib": round(_memory_gib(), 1),
        "python": _python_version(python),
        "kernel": platform.release(),
        "wrk": _wrk_version(),
    }
