"""wrk driver: writes the Lua script, runs wrk, parses its `--latency` output and counters."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

WRK_MISSING = (
    "wrk is not installed; the `submit` scenarios need it.\n"
    "Install it with: apt-get update && apt-get install -y wrk"
)

# Each thread counts its non-202 answers; `done` adds them up over the threads and prints
# one machine-readable line (wrk's own summary counts every answer as a request).
LUA_TEMPLATE = """\
wrk.method = "POST"
wrk.body = '{"bench": "submit", "n": 1}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Invocation-Type"] = "Async"
wrk.headers["X-Delay-Seconds"] = "%(delay)s"

local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    non202 = 0
    first_bad = 0
end

function response(status, headers, body)
    if status ~= 202 then
        non202 = non202 + 1
        if first_bad == 0 then
            first_bad = status
        end
    end
end

function done(summary, latency, requests)
    local bad = 0
    local first = 0
    for _, thread in ipairs(threads) do
        bad = bad + thread:get("non202")
        if first == 0 then
            first = thread:get("first_bad")
        end
    end
    local e = summary.errors
    io.write(string.format(
        "BENCH requests=%%d non202=%%d first_bad=%%d duration_us=%%d "
        .. "connect=%%d read=%%d write=%%d timeout=%%d status=%%d\\n",
        summary.requests, bad, first, summary.duration,
        e.connect, e.read, e.write, e.timeout, e.status))
end
"""

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


class WrkError(RuntimeError):
    """wrk is missing, failed, or saw answers other than 202."""


@dataclass(frozen=True, slots=True)
class WrkResult:
    """What one wrk run measured."""

    requests: int
    accepted: int
    non202: int
    first_bad_status: int
    duration_s: float
    socket_errors: dict[str, int]
    latency_ms: dict[str, float]
    output: str

    @property
    def accepted_per_s(self) -> float:
        return self.accepted / self.duration_s if self.duration_s > 0 else 0.0


def wrk_path() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise WrkError(WRK_MISSING)
    return path


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNITS_MS[unit]


def parse(output: str) -> WrkResult:
    """Parse wrk's output: the `--latency` distribution and the script's `BENCH` line."""
    line = re.search(r"^BENCH (.*)$", output, re.MULTILINE)
    if line is None:
        raise WrkError(f"wrk printed no BENCH line:\n{output}")
    counters = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line.group(1))}
    latency = {
        f"p{pct}": _ms(value, unit)
        for pct, value, unit in re.findall(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.M)
    }
    if "p50" not in latency or "p99" not in latency:
        raise WrkError(f"no latency distribution in wrk's output (was --latency given?):\n{output}")
    requests = counters["requests"]
    non202 = counters["non202"]
    return WrkResult(
        requests=requests,
        accepted=requests - non202,
        non202=non202,
        first_bad_status=counters["first_bad"],
        duration_s=counters["duration_us"] / 1e6,
        socket_errors={k: counters[k] for k in ("connect", "read", "write", "timeout")},
        latency_ms=latency,
        output=output,
    )


def run(
    url: str,
    *,
    duration_s: int,
    connections: int = 8,
    threads: int = 2,
    delay_s: int = 3600,
    timeout_s: int = 5,
) -> WrkResult:
    """Run wrk against `url` with the submit script; stops wrk whatever happens."""
    exe = wrk_path()
    with tempfile.TemporaryDirectory(prefix="asyncfn-bench-wrk-") as tmp:
        script = Path(tmp) / "submit.lua"
        script.write_text(LUA_TEMPLATE % {"delay": delay_s})
        argv = [
            exe,
            *("-t", str(threads), "-c", str(connections), "-d", f"{duration_s}s"),
            *("--timeout", f"{timeout_s}s", "--latency", "-s", str(script), url),
        ]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            output, _ = proc.communicate(timeout=duration_s + 60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if proc.returncode != 0:
        raise WrkError(f"wrk exited with {proc.returncode}:\n{output}")
    return parse(output)
