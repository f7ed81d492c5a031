"""Bulk stop under load: 10,000 queued tasks of a paused function stopped by one operation
(`POST /v1/tasks:stop`), while single submissions to another function go on. Measures the
operation's wall time (its created_at → finished_at) and the submit latency p50/p99 of single
submissions made during it against the same before it; medians of the runs.

`python -m bench.bulk [--runs 3] [--tasks 10000]` prints the table docs/benchmarks.md shows.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from datetime import datetime
from typing import Any

import httpx

from bench.server import FUNCTION, REPO, BenchServer
from bench.stats import median, percentile

BULK = "bulk"
BATCH = 1000
BASELINE = 500
"""Single submissions measured before the operation."""


def _seconds(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _fill(http: httpx.Client, count: int) -> None:
    while count > 0:
        n = min(count, BATCH)
        resp = http.post(f"/v1/functions/{BULK}/invocations:batch", json=[""] * n)
        resp.raise_for_status()
        count -= n


def _submit_ms(http: httpx.Client) -> float:
    began = time.perf_counter()
    resp = http.post(f"/v1/functions/{FUNCTION}/invocations", content=b"x")
    resp.raise_for_status()
    return (time.perf_counter() - began) * 1000


def _submitter(url: str, stop: threading.Event, out: list[float]) -> None:
    with httpx.Client(base_url=url, timeout=30) as http:
        while not stop.is_set():
            out.append(_submit_ms(http))


def one_run(python: str, tasks: int) -> dict[str, float]:
    with BenchServer(python=python) as srv, httpx.Client(base_url=srv.base_url, timeout=60) as http:
        srv.deploy(BULK)
        http.post(f"/v1/functions/{BULK}:suspend").raise_for_status()
        _fill(http, tasks)
        before = [_submit_ms(http) for _ in range(BASELINE)]

        during: list[float] = []
        stop = threading.Event()
        probe = threading.Thread(target=_submitter, args=(srv.base_url, stop, during))
        probe.start()
        try:
            time.sleep(0.2)  # the probe at its pace first
            body = {"filter": {"function": BULK, "status": ["Enqueued"]}}
            resp = http.post("/v1/tasks:stop", json=body)
            resp.raise_for_status()
            op: dict[str, Any] = resp.json()["operation"]
            while op["status"] == "running":
                time.sleep(0.02)
                op = http.get(f"/v1/operations/{op['id']}").json()
        finally:
            stop.set()
            probe.join()
        if op["status"] != "succeeded" or op["done"] != tasks:
            raise RuntimeError(f"the operation did not stop every task: {op}")
        return {
            "operation wall time (s)": _seconds(op["finished_at"]) - _seconds(op["created_at"]),
            "stopped tasks/s": tasks / (_seconds(op["finished_at"]) - _seconds(op["created_at"])),
            "submit p50 before (ms)": percentile(before, 50),
            "submit p99 before (ms)": percentile(before, 99),
            "submit p50 during (ms)": percentile(during, 50),
            "submit p99 during (ms)": percentile(during, 99),
            "submissions during": float(len(during)),
        }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.bulk", description=__doc__)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--tasks", type=int, default=10_000)
    venv = REPO / ".venv" / "bin" / "python"
    p.add_argument("--python", default=str(venv) if venv.exists() else sys.executable)
    args = p.parse_args(argv)
    runs = []
    for i in range(args.runs):
        runs.append(one_run(args.python, args.tasks))
        print(f"run {i + 1}: {runs[-1]}", file=sys.stderr, flush=True)
    head = " | ".join(f"run {i + 1}" for i in range(len(runs)))
    print(f"| metric ({args.tasks:,} queued tasks, bulk stop) | {head} | median |")
    print("|---" * (len(runs) + 2) + "|")
    for metric in runs[0]:
        values = [run[metric] for run in runs]
        cells = " | ".join(f"{v:,.2f}" for v in values)
        print(f"| {metric} | {cells} | {median(values):,.2f} |")


if __name__ == "__main__":
    main()
