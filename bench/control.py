"""Scenarios of task control and timing: stop latency, delay precision, an idle delayed backlog."""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bench import db, procs
from bench.rawhttp import RawClient, SyncClient
from bench.scenarios import (
    HOUR_S,
    Metric,
    Options,
    RunResult,
    Scenario,
    ScenarioError,
    post_batches,
    wait_succeeded,
)
from bench.server import FUNCTION, HOST, BenchServer, FunctionConfig
from bench.stats import percentile

ASYNC = {"Content-Type": "application/json", "X-Invocation-Type": "Async"}
TERMINAL = ("Succeeded", "Failed", "Stopped", "Expired", "Invalid")

# The handler of `stop`: writes its pid (the instance process's) to DIR/N.pid, then sleeps.
SLEEPER_SOURCE = """\
import json
import os
import time


def handler(event, context):
    args = json.loads(event)
    path = os.path.join(args["dir"], "%d.pid" % args["n"])
    with open(path + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.replace(path + ".tmp", path)
    time.sleep(args["sleep_s"])
"""

# The same handler in an instance that ignores SIGTERM (set at import, on the main thread), so
# only the SIGKILL after the function's stop_grace_s ends it.
STUBBORN_SOURCE = (
    "import signal\n\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n" + SLEEPER_SOURCE
)

SLEEP_S = 60
STOP_TIMEOUT_S = 300  # the functions' timeout_s: well past the handler's sleep


def parse_rfc3339(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class PidWatch(threading.Thread):
    """Polls `os.kill(pid, 0)` every 0.2 ms; `gone_at` is the perf_counter when it first failed."""

    def __init__(self, pid: int, timeout_s: float) -> None:
        super().__init__(name=f"pid-watch-{pid}", daemon=True)
        self.pid = pid
        self.timeout_s = timeout_s
        self.gone_at = math.nan

    def run(self) -> None:
        deadline = time.perf_counter() + self.timeout_s
        while time.perf_counter() < deadline:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                self.gone_at = time.perf_counter()
                return
            except PermissionError:  # alive, though not ours: keep waiting
                pass
            time.sleep(0.0002)


@dataclass(frozen=True, slots=True)
class StopSample:
    """One stop, in ms from the call: answer (Stopped committed), pid gone, server events."""

    answer_ms: float
    gone_ms: float
    stopped_event_ms: float
    stopping_event_ms: float
    answered: str


@dataclass(frozen=True, slots=True)
class Variant:
    """One kind of handler `stop` measures: the metric prefix, function name, code, grace."""

    prefix: str
    function: str
    source: str
    grace_s: float | None  # None: the server's default

    def config(self) -> FunctionConfig:
        return FunctionConfig(
            max_instances=1,
            instance_concurrency=1,
            timeout_s=STOP_TIMEOUT_S,
            stop_grace_s=self.grace_s,
        )


def _json(answer_body: bytes) -> dict[str, Any]:
    value = json.loads(answer_body)
    if not isinstance(value, dict):
        raise ScenarioError(f"expected a JSON object, got {answer_body[:200]!r}")
    return value


class Stop(Scenario):
    name = "stop"
    note = (
        "50 tasks one after another, each a handler that writes its pid then sleeps 60 s: once it "
        "is Running and the pid file exists, time POST /v1/tasks/{id}:stop to its 200 "
        "(Stopped committed), the pid's disappearance (os.kill(pid, 0) polled every 0.2 ms) "
        "and the Stopped event's time; TERM = the default SIGTERM ends the handler, KILL = it "
        "ignores SIGTERM, so SIGKILL after stop_grace_s (0.2 s)"
    )

    metrics = (
        Metric("TERM: call->Stopped (200) p50", "ms", 10, higher_is_better=False),
        Metric("TERM: call->Stopped (200) p99", "ms", 50, higher_is_better=False),
        Metric("TERM: call->pid gone p50", "ms", 10, higher_is_better=False),
        Metric("TERM: call->pid gone p99", "ms", 50, higher_is_better=False),
        Metric("TERM: call->Stopped event p50", "ms"),
        Metric("KILL: call->Stopped (200) p50", "ms"),
        Metric("KILL: call->Stopped (200) p99", "ms"),
        Metric("KILL: call->pid gone p50", "ms"),
        Metric("KILL: call->pid gone p99", "ms"),
        Metric("KILL: call->Stopped event p50", "ms"),
    )

    def variants(self, options: Options) -> tuple[Variant, ...]:
        return (
            Variant("TERM", "sleeper", SLEEPER_SOURCE, None),
            Variant("KILL", "stubborn", STUBBORN_SOURCE, options.stop_kill_grace_s),
        )

    def run(self, server: BenchServer, options: Options) -> RunResult:
        metrics: dict[str, float] = {}
        info: dict[str, Any] = {}
        pid_dir = Path(tempfile.mkdtemp(prefix="asyncfn-bench-pids-"))
        try:
            with SyncClient(HOST, server.port) as client:
                for variant in self.variants(options):
                    server.deploy(variant.function, variant.config(), variant.source)
                    variant_dir = pid_dir / variant.function
                    variant_dir.mkdir()
                    samples = [
                        self._one(server, client, variant, variant_dir, i)
                        for i in range(options.stop_tasks)
                    ]
                    metrics |= self._figures(variant.prefix, samples)
                    answered: dict[str, int] = {}
                    for s in samples:
                        answered[s.answered] = answered.get(s.answered, 0) + 1
                    info[variant.prefix] = {
                        "function": variant.function,
                        "stop_grace_s": variant.grace_s,
                        "answered": answered,
                        "answer_ms": [s.answer_ms for s in samples],
                        "gone_ms": [s.gone_ms for s in samples],
                        "stopped_event_ms": [s.stopped_event_ms for s in samples],
                        "stopping_event_ms": [s.stopping_event_ms for s in samples],
                    }
        finally:
            shutil.rmtree(pid_dir, ignore_errors=True)
        server.check_alive()
        return RunResult(metrics, info)

    @staticmethod
    def _figures(prefix: str, samples: list[StopSample]) -> dict[str, float]:
        answer = [s.answer_ms for s in samples]
        gone = [s.gone_ms for s in samples]
        return {
            f"{prefix}: call->Stopped (200) p50": percentile(answer, 50),
            f"{prefix}: call->Stopped (200) p99": percentile(answer, 99),
            f"{prefix}: call->pid gone p50": percentile(gone, 50),
            f"{prefix}: call->pid gone p99": percentile(gone, 99),
            f"{prefix}: call->Stopped event p50": percentile(
                [s.stopped_event_ms for s in samples], 50
            ),
        }

    def _one(
        self, server: BenchServer, client: SyncClient, variant: Variant, pid_dir: Path, n: int
    ) -> StopSample:
        """Submit one sleeping task, wait until it runs, stop it and time the stop."""
        sub = variant.prefix.lower()
        payload = {"dir": str(pid_dir), "n": n, "sleep_s": SLEEP_S}
        path = f"/v1/functions/{variant.function}/invocations"
        answer = client.request("POST", path, json.dumps(payload).encode(), ASYNC)
        if answer.status != 202:
            raise ScenarioError(f"invocation answered {answer.status}: {answer.body[:300]!r}")
        task_id = str(_json(answer.body)["task_id"])
        pid = self._wait_running(server, client, task_id, pid_dir / f"{n}.pid")

        watch = PidWatch(pid, timeout_s=30.0)
        watch.start()
        called_at = time.time()
        t0 = time.perf_counter()
        answer = client.request("POST", f"/v1/tasks/{task_id}:stop")
        t1 = time.perf_counter()
        if answer.status in (404, 405):
            raise ScenarioError(
                f"POST /v1/tasks/{{id}}:stop answered {answer.status}: the server cannot stop "
                f"tasks yet ({answer.body[:200]!r})"
            )
        if answer.status != 200:
            raise ScenarioError(f"stop answered {answer.status}: {answer.body[:300]!r}")
        answered = str(_json(answer.body).get("status"))
        if answered == "Stopped":
            answer_ms = 1000 * (t1 - t0)
        elif answered == "Stopping":  # the server did not wait: time until Stopped is seen
            self._wait_status(client, task_id, ("Stopped",), 30.0)
            answer_ms = 1000 * (time.perf_counter() - t0)
        else:
            raise ScenarioError(f"{sub}: stop answered status {answered!r}: {answer.body[:300]!r}")
        watch.join(35.0)
        if math.isnan(watch.gone_at):
            raise ScenarioError(f"{sub}: instance pid {pid} still alive 30 s after the stop call")
        task = self._get(client, task_id)
        if task["status"] != "Stopped":
            raise ScenarioError(f"{sub}: task {task_id} is {task['status']} after its stop")
        events = {e["status"]: e["at"] for e in task.get("events", []) if e.get("at")}
        if "Stopped" not in events:
            raise ScenarioError(f"{sub}: task {task_id} has no Stopped event: {task['events']}")

        def event_ms(status: str) -> float:
            at = events.get(status)
            return math.nan if at is None else 1000 * (parse_rfc3339(at) - called_at)

        return StopSample(
            answer_ms=answer_ms,
            gone_ms=1000 * (watch.gone_at - t0),
            stopped_event_ms=event_ms("Stopped"),
            stopping_event_ms=event_ms("Stopping"),
            answered=answered,
        )

    def _wait_running(
        self, server: BenchServer, client: SyncClient, task_id: str, pid_file: Path
    ) -> int:
        """Wait until the handler has written its pid file and the task reads Running."""
        deadline = time.monotonic() + 30.0
        while not pid_file.exists():
            if time.monotonic() > deadline:
                task = self._get(client, task_id)
                raise ScenarioError(f"no pid file 30 s after submit; task is {task['status']}")
            server.check_alive()
            time.sleep(0.002)
        pid = int(pid_file.read_text())
        self._wait_status(client, task_id, ("Running",), 30.0)
        return pid

    def _wait_status(
        self, client: SyncClient, task_id: str, wanted: tuple[str, ...], timeout_s: float
    ) -> None:
        deadline = time.monotonic() + timeout_s
        while (status := self._get(client, task_id)["status"]) not in wanted:
            if status in TERMINAL or time.monotonic() > deadline:
                raise ScenarioError(f"task {task_id} is {status}, waiting for {wanted}")
            time.sleep(0.002)

    @staticmethod
    def _get(client: SyncClient, task_id: str) -> dict[str, Any]:
        answer = client.request("GET", f"/v1/tasks/{task_id}")
        if answer.status != 200:
            raise ScenarioError(f"GET task answered {answer.status}: {answer.body[:300]!r}")
        return _json(answer.body)


class Delay(Scenario):
    name = "delay"
    note = (
        "after 16 warm-up tasks (2 instances x 8 slots warm), 300 async POSTs with "
        "X-Delay-Seconds spread evenly over 0.5-5 s (shuffled); from the store, per task "
        "started_at - run_at (started_at is set when the task is claimed); a start before "
        "its run_at counts against a target of none"
    )
    metrics = (
        Metric("start after run_at p50", "ms"),
        Metric("start after run_at p99", "ms", 100, higher_is_better=False),
        Metric("start after run_at max", "ms"),
        Metric("started before run_at", "tasks", 0, higher_is_better=False),
    )

    def function_config(self, options: Options) -> FunctionConfig:
        return FunctionConfig(max_instances=2, instance_concurrency=8)

    def run(self, server: BenchServer, options: Options) -> RunResult:
        return asyncio.run(self._run(server, options))

    async def _run(self, server: BenchServer, options: Options) -> RunResult:
        path = server.invoke_url().removeprefix(server.base_url)
        config = self.function_config(options)
        n = options.delay_tasks
        low, high = options.delay_min_s, options.delay_max_s
        delays = [round(low + (high - low) * i / max(1, n - 1), 3) for i in range(n)]
        random.Random(n).shuffle(delays)

        async def submit(client: RawClient, i: int, delay_s: float | None) -> str:
            headers = dict(ASYNC)
            if delay_s is not None:
                headers["X-Delay-Seconds"] = f"{delay_s:.3f}"
            body = b'{"bench": "delay", "i": %d}' % i
            answer = await asyncio.wait_for(client.post(path, body, headers), 30.0)
            if answer.status != 202:
                raise ScenarioError(f"invocation answered {answer.status}: {answer.body[:300]!r}")
            return str(json.loads(answer.body)["task_id"])

        async with RawClient(HOST, server.port) as client:
            slots = config.max_instances * config.instance_concurrency
            warm = await asyncio.gather(*(submit(client, -1 - k, None) for k in range(slots)))
            await wait_succeeded(server, list(warm), stall_s=30.0)
            queue = iter(enumerate(delays))
            ids: dict[str, float] = {}

            async def worker() -> None:
                for i, delay_s in queue:
                    ids[await submit(client, i, delay_s)] = delay_s

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(8)))
            submit_wall = time.perf_counter() - started
        await wait_succeeded(server, list(ids), stall_s=30.0)
        server.check_alive()
        with db.connect(server.db_path) as conn:
            times = db.task_times(conn, ids)
            warm_instances = len({t.instance_id for t in db.task_times(conn, warm)})
        if len(times) != n or any(t.status != "Succeeded" or t.started_at is None for t in times):
            raise ScenarioError(f"{len(times)} of {n} tasks found, not all Succeeded")
        late_ms = [1000 * (t.started_at - t.run_at) for t in times if t.started_at is not None]
        # run_at must be the accept time plus the delay asked for
        run_at_error_ms = [1000 * abs(t.run_at - t.created_at - ids[t.id]) for t in times]
        early = [v for v in late_ms if v < 0]
        return RunResult(
            {
                "start after run_at p50": percentile(late_ms, 50),
                "start after run_at p99": percentile(late_ms, 99),
                "start after run_at max": max(late_ms),
                "started before run_at": float(len(early)),
            },
            {
                "tasks": n,
                "submit_wall_s": submit_wall,
                "warm_instances": warm_instances,
                "min_late_ms": min(late_ms),
                "early_ms": early,
                "run_at_error_max_ms": max(run_at_error_ms),
                "late_ms": late_ms,
            },
        )


class Idle(Scenario):
    name = "idle"
    note = (
        "100,000 tasks delayed 1 h posted in batches of 1,000, then the server's CPU (its process "
        "tree, /proc utime+stime with reaped children) over 10 s as % of one core, against the "
        "same window on the empty server; RSS of the server process before and after"
    )
    metrics = (
        Metric("CPU idle, delayed backlog", "%", 2, higher_is_better=False),
        Metric("CPU idle, empty", "%"),
        Metric("RSS before", "MB"),
        Metric("RSS, delayed backlog", "MB", 150, higher_is_better=False),
        Metric("load rows/s", "rows/s"),
    )

    def run(self, server: BenchServer, options: Options) -> RunResult:
        return asyncio.run(self._run(server, options))

    @staticmethod
    async def _cpu_percent(server: BenchServer, window_s: float) -> float:
        assert server.proc is not None
        cpu0, t0 = procs.tree_cpu_seconds(server.proc.pid), time.monotonic()
        await asyncio.sleep(window_s)
        cpu1, t1 = procs.tree_cpu_seconds(server.proc.pid), time.monotonic()
        return 100.0 * (cpu1 - cpu0) / (t1 - t0)

    async def _run(self, server: BenchServer, options: Options) -> RunResult:
        n = options.idle_tasks
        size = min(options.batch_size, n)
        if n % size:
            raise ScenarioError(f"idle tasks ({n}) must be a multiple of the batch size ({size})")
        await asyncio.sleep(1.0)  # let start-up work (migrations, first GC) settle
        rss_before = server.rss_mb()
        cpu_empty = await self._cpu_percent(server, options.idle_window_s)
        item: dict[str, object] = {"payload": {"bench": "idle"}, "delay_s": HOUR_S}
        body = json.dumps([item] * size).encode()
        wall, _, ids = await post_batches(server, body, n // size, size, options.batch_concurrency)
        if len(set(ids)) != n:
            raise ScenarioError(f"{len(set(ids))} distinct task ids for {n} tasks")
        await asyncio.sleep(2.0)  # the last commits and anything the submits scheduled
        cpu_loaded = await self._cpu_percent(server, options.idle_window_s)
        rss_after = server.rss_mb()
        server.check_alive()
        with db.connect(server.db_path) as conn:
            counts = db.status_counts(conn, FUNCTION)
        if counts != {"Enqueued": n}:
            raise ScenarioError(f"expected {n} Enqueued tasks, the store has {counts}")
        return RunResult(
            {
                "CPU idle, delayed backlog": cpu_loaded,
                "CPU idle, empty": cpu_empty,
                "RSS before": rss_before,
                "RSS, delayed backlog": rss_after,
                "load rows/s": n / wall,
            },
            {"tasks": n, "load_wall_s": wall, "window_s": options.idle_window_s},
        )


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (Stop(), Delay(), Idle())}
