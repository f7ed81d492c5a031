"""Scenario `logs`: how soon a printed line reaches a client following the task's log (SSE)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from bench.scenarios import Metric, Options, RunResult, Scenario, ScenarioError
from bench.server import BenchServer, FunctionConfig
from bench.stats import percentile

FUNCTION = "printer"
LINES = 60
EVERY_S = 0.05

# Prints one line every EVERY_S s, each carrying the wall time at which it was printed.
PRINTER_SOURCE = f"""\
import time


def handler(event, context):
    for i in range({LINES}):
        print("line %d printed-at %.6f" % (i, time.time()), flush=True)
        time.sleep({EVERY_S})
"""


class Logs(Scenario):
    name = "logs"
    note = (
        f"a handler prints {LINES} lines, one every {EVERY_S * 1000:.0f} ms, each with the time "
        "it was printed; a client follows GET /v1/tasks/{id}/logs?follow=true (server-sent "
        "events) from before the task starts; per line, arrival at the client - printed time; "
        "3 tasks per run"
    )
    metrics = (
        Metric("line arrival p50", "ms"),
        Metric("line arrival p99", "ms", 200, higher_is_better=False),
        Metric("line arrival max", "ms"),
        Metric("lines received", "lines"),
    )

    def run(self, server: BenchServer, options: Options) -> RunResult:
        server.deploy(
            FUNCTION, FunctionConfig(max_instances=1, instance_concurrency=1), PRINTER_SOURCE
        )
        lags_ms: list[float] = []
        with httpx.Client(base_url=server.base_url, timeout=30.0) as client:
            for _ in range(3):
                lags_ms += self._one(client)
        server.check_alive()
        if len(lags_ms) != 3 * LINES:
            raise ScenarioError(f"received {len(lags_ms)} of {3 * LINES} log lines")
        return RunResult(
            {
                "line arrival p50": percentile(lags_ms, 50),
                "line arrival p99": percentile(lags_ms, 99),
                "line arrival max": max(lags_ms),
                "lines received": float(len(lags_ms)),
            },
            {"lags_ms": lags_ms},
        )

    @staticmethod
    def _one(client: httpx.Client) -> list[float]:
        answer = client.post(
            f"/v1/functions/{FUNCTION}/invocations",
            content=b"",
            headers={"X-Invocation-Type": "Async", "X-Delay-Seconds": "0.5"},
        )
        if answer.status_code != 202:
            raise ScenarioError(f"invocation answered {answer.status_code}: {answer.text[:300]}")
        task_id = answer.json()["task_id"]
        lags: list[float] = []
        url = f"/v1/tasks/{task_id}/logs"
        with client.stream("GET", url, params={"follow": "true"}, timeout=60.0) as stream:
            event = ""
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: ") and event == "log":
                    arrived = time.time()
                    item: dict[str, Any] = json.loads(line.removeprefix("data: "))
                    text = str(item["line"])
                    if "printed-at " in text:
                        printed = float(text.rsplit("printed-at ", 1)[1])
                        lags.append(1000 * (arrived - printed))
                elif line.startswith("data: ") and event == "end":
                    break
        return lags


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (Logs(),)}
