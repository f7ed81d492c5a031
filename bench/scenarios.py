"""The scenarios: what each one submits, waits for and measures on one fresh server."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from bench import db, wrk
from bench.rawhttp import RawClient
from bench.server import FUNCTION, HOST, NO_GROUP_COMMIT, BenchServer, FunctionConfig
from bench.stats import percentile

HOUR_S = 3600
BATCH_WARMUP = 8
"""Batches `batch` posts before it measures: the WAL file grows to its working size once."""


class ScenarioError(RuntimeError):
    """A run could not measure what it should (bad answers, lost tasks, timeouts)."""


@dataclass(frozen=True, slots=True)
class Metric:
    """A figure a scenario reports; `target` is a floor (higher is better) or a ceiling."""

    name: str
    unit: str
    target: float | None = None
    higher_is_better: bool = True

    def passes(self, value: float) -> bool | None:
        if self.target is None or value != value:  # no target, or NaN
            return None
        return value >= self.target if self.higher_is_better else value <= self.target


@dataclass(slots=True)
class Options:
    """Knobs of every scenario, resolved from the command line."""

    python: str
    duration_s: int = 10
    connections: int = 8
    threads: int = 2
    batches: int = 100
    batch_size: int = 1000
    batch_concurrency: int = 4
    drain_tasks: int = 20_000
    drain_lead_s: float = 3.0
    deliver_tasks: int = 5_000
    latency_rate: float = 100.0
    latency_seconds: float = 10.0
    warmup_tasks: int = 16
    stop_tasks: int = 50
    stop_kill_grace_s: float = 0.2
    delay_tasks: int = 300
    delay_min_s: float = 0.5
    delay_max_s: float = 5.0
    idle_tasks: int = 100_000
    idle_window_s: float = 10.0
    trigger_scale: float = 1.0
    depth_tasks: int = 1_000_000
    function: FunctionConfig = field(default_factory=FunctionConfig)
    keep: bool = False


@dataclass(slots=True)
class RunResult:
    """One run's figures (`metrics`, by metric name) and anything else worth keeping."""

    metrics: dict[str, float]
    info: dict[str, Any] = field(default_factory=dict)


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _check_batch_answer(resp: httpx.Response, size: int) -> list[str]:
    if resp.status_code != 202:
        raise ScenarioError(f"batch answered {resp.status_code}: {resp.text[:500]}")
    items = resp.json()["items"]
    if len(items) != size or not all(item.get("created") for item in items):
        raise ScenarioError(f"batch answered {len(items)} items, not {size} created ones")
    return [str(item["task_id"]) for item in items]


async def post_batches(
    server: BenchServer,
    body: bytes,
    batches: int,
    size: int,
    concurrency: int,
    function: str = FUNCTION,
) -> tuple[float, list[float], list[str]]:
    """POST `batches` copies of `body` to `function` with `concurrency` requests in flight.

    Answers the wall time, each request's latency (s) and every task id.
    """
    todo = iter(range(batches))
    latencies: list[float] = []
    ids: list[str] = []
    headers = {"Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def worker(client: httpx.AsyncClient) -> None:
        for _ in todo:
            sent = time.perf_counter()
            resp = await client.post(server.batch_url(function), content=body, headers=headers)
            latencies.append(time.perf_counter() - sent)
            ids.extend(_check_batch_answer(resp, size))

    async with httpx.AsyncClient(limits=limits, timeout=120.0) as client:
        await client.get(f"{server.base_url}/healthz")  # open a connection before the clock
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return wall, latencies, ids


class Scenario:
    """Base: a name, a note for the table, its metrics and `run(server, options)`."""

    name = ""
    note = ""
    metrics: tuple[Metric, ...] = ()
    max_runs: int | None = None
    """At most this many runs, whatever `--runs` says (None: no cap)."""

    def skip_reason(self, options: Options) -> str | None:
        """Why this scenario cannot run here (None: it can)."""
        return None

    def server_args(self, options: Options) -> tuple[str, ...]:
        return ()

    def function_config(self, options: Options) -> FunctionConfig:
        return options.function

    def run(self, server: BenchServer, options: Options) -> RunResult:
        raise NotImplementedError


class Submit(Scenario):
    name = "submit"
    note = (
        "single async POSTs with wrk (8 connections unless --connections, 2 threads), each "
        "delayed 1 h so the tasks stay queued: measures the accept path (durable commit + "
        "tracking) only; only 202s count"
    )
    metrics: tuple[Metric, ...] = (
        Metric("requests/s", "req/s", 5000),
        Metric("latency p50", "ms"),
        Metric("latency p99", "ms"),
        Metric("server CPU", "%"),
    )

    def skip_reason(self, options: Options) -> str | None:
        try:
            wrk.wrk_path()
        except wrk.WrkError as exc:
            return str(exc)
        return None

    def run(self, server: BenchServer, options: Options) -> RunResult:
        cpu0 = server.cpu_seconds()
        result = wrk.run(
            server.invoke_url(),
            duration_s=options.duration_s,
            connections=options.connections,
            threads=min(options.threads, options.connections),
            delay_s=HOUR_S,
        )
        cpu = server.cpu_seconds() - cpu0
        server.check_alive()
        if result.non202:
            raise ScenarioError(
                f"{result.non202} of {result.requests} answers were not 202 "
                f"(first one: {result.first_bad_status})\n{result.output}"
            )
        if any(result.socket_errors.values()):
            raise ScenarioError(f"wrk saw socket errors {result.socket_errors}\n{result.output}")
        stored = self.stored(server)
        if stored < result.accepted:
            raise ScenarioError(f"{result.accepted} tasks accepted (202) but {stored} stored")
        return RunResult(
            {
                "requests/s": result.accepted_per_s,
                "latency p50": result.latency_ms["p50"],
                "latency p99": result.latency_ms["p99"],
                "server CPU": 100.0 * cpu / result.duration_s,
            },
            {"accepted": result.accepted, "stored": stored, "wrk_output": result.output},
        )

    def stored(self, server: BenchServer) -> int:
        """Tasks of the bench function in the server's store."""
        with db.connect(server.db_path) as conn:
            return sum(db.status_counts(conn, FUNCTION).values())


class GroupCommitOff(Submit):
    name = "group-commit"
    note = (
        "as `submit`, with the store's inline mode (one transaction per write, no group commit): "
        "what grouping buys"
    )
    metrics = (
        Metric("requests/s", "req/s"),
        Metric("latency p50", "ms"),
        Metric("latency p99", "ms"),
        Metric("server CPU", "%"),
    )

    def server_args(self, options: Options) -> tuple[str, ...]:
        return (NO_GROUP_COMMIT,)


class Batch(Scenario):
    name = "batch"
    note = (
        "after 8 warm-up batches, 100 (--batches) POSTs of arrays of 1,000 payloads (delayed "
        "1 h) to invocations:batch, 4 in flight; rows/s over the wall time of those batches"
    )
    metrics: tuple[Metric, ...] = (
        Metric("rows/s", "rows/s", 50_000),
        Metric("request p50", "ms"),
        Metric("request p99", "ms"),
        Metric("server CPU", "%"),
    )

    def run(self, server: BenchServer, options: Options) -> RunResult:
        item: dict[str, object] = {"payload": {"bench": "batch"}, "delay_s": HOUR_S}
        body = json.dumps([item] * options.batch_size).encode()
        size, concurrency = options.batch_size, options.batch_concurrency
        asyncio.run(post_batches(server, body, BATCH_WARMUP, size, concurrency))
        cpu0 = server.cpu_seconds()
        wall, latencies, ids = asyncio.run(
            post_batches(server, body, options.batches, size, concurrency)
        )
        cpu = server.cpu_seconds() - cpu0
        server.check_alive()
        rows = options.batches * options.batch_size
        if len(set(ids)) != rows:
            raise ScenarioError(f"{len(set(ids))} distinct task ids for {rows} rows")
        return RunResult(
            {
                "rows/s": rows / wall,
                "request p50": 1000 * percentile(latencies, 50),
                "request p99": 1000 * percentile(latencies, 99),
                "server CPU": 100.0 * cpu / wall,
            },
            {"rows": rows, "wall_s": wall},
        )


async def wait_until(
    count: Callable[[], tuple[int, dict[str, int]]],
    want: int,
    *,
    stall_s: float,
    poll_s: float = 0.05,
) -> None:
    """Poll `count()` (done, status counts) until `want` are done; fail when progress stalls."""
    last, last_change = -1, time.monotonic()
    while True:
        done, counts = count()
        if done >= want:
            return
        failed = {s: n for s, n in counts.items() if s in ("Failed", "Expired", "Invalid")}
        if failed:
            raise ScenarioError(f"tasks ended badly: {counts}")
        now = time.monotonic()
        if done != last:
            last, last_change = done, now
        elif now - last_change > stall_s:
            raise ScenarioError(f"no progress for {stall_s:.0f} s: {done}/{want} done; {counts}")
        await asyncio.sleep(poll_s)


async def wait_succeeded(server: BenchServer, ids: list[str], stall_s: float) -> None:
    """Poll the store until the tasks `ids` have all Succeeded (see `wait_until`)."""
    with db.connect(server.db_path) as conn:

        def count() -> tuple[int, dict[str, int]]:
            counts: dict[str, int] = {}
            for t in db.task_times(conn, ids):
                counts[t.status] = counts.get(t.status, 0) + 1
            return counts.get("Succeeded", 0), counts

        await wait_until(count, len(ids), stall_s=stall_s)


class Drain(Scenario):
    name = "drain"
    note = (
        "20,000 (--drain-tasks) no-op tasks submitted in batches with the same run_at 3 s ahead; "
        "rate = tasks / (last finished_at - run_at); all must end Succeeded"
    )

    metrics = (
        Metric("tasks/s", "tasks/s", 3000),
        Metric("first start after run_at", "ms"),
        Metric("succeeded", "tasks"),
        Metric("server CPU", "%"),
    )

    def run(self, server: BenchServer, options: Options) -> RunResult:
        return asyncio.run(self._run(server, options))

    async def _run(self, server: BenchServer, options: Options) -> RunResult:
        n = options.drain_tasks
        size = min(options.batch_size, n)
        if n % size:
            raise ScenarioError(f"drain tasks ({n}) must be a multiple of the batch size ({size})")
        run_at = rfc3339(time.time() + options.drain_lead_s)
        body = json.dumps([{"payload": {"bench": "drain"}, "run_at": run_at}] * size).encode()
        wall, _, ids = await post_batches(server, body, n // size, size, options.batch_concurrency)
        with db.connect(server.db_path) as conn:
            span = db.drain_span(conn, FUNCTION)
            early = conn.execute(
                "SELECT count(*) FROM tasks WHERE started_at IS NOT NULL"
            ).fetchone()[0]
        if span.count != n or len(set(ids)) != n:
            raise ScenarioError(f"{span.count} tasks stored, {len(set(ids))} ids, for {n} sent")
        if span.max_run_at - span.min_run_at > 0.001:
            raise ScenarioError(f"run_at differs across tasks: {span}")
        if early or time.time() >= span.min_run_at:
            raise ScenarioError(
                f"submitting took {wall:.2f} s, past the {options.drain_lead_s} s lead "
                f"({early} tasks started early); raise --drain-lead"
            )
        cpu0 = server.cpu_seconds()  # idle until run_at: the CPU is the drain's

        with db.connect(server.db_path) as conn:

            def count() -> tuple[int, dict[str, int]]:
                counts = db.status_counts(conn, FUNCTION)
                return counts.get("Succeeded", 0), counts

            await wait_until(count, n, stall_s=30.0 + options.drain_lead_s, poll_s=0.1)
            cpu = server.cpu_seconds() - cpu0
            cpu_wall = time.time() - span.min_run_at
            span = db.drain_span(conn, FUNCTION)
            succeeded = db.count_succeeded(conn, FUNCTION)
            counts = db.status_counts(conn, FUNCTION)
        server.check_alive()
        if succeeded != n or sum(counts.values()) != n:
            raise ScenarioError(f"expected exactly {n} Succeeded, got {counts}")
        elapsed = span.max_finished_at - span.min_run_at
        return RunResult(
            {
                "tasks/s": n / elapsed,
                "first start after run_at": 1000 * (span.min_started_at - span.min_run_at),
                "succeeded": float(succeeded),
                "server CPU": 100.0 * cpu / cpu_wall,
            },
            {"tasks": n, "submit_wall_s": wall, "drain_s": elapsed, "statuses": counts},
        )


class Latency(Scenario):
    name = "latency"
    note = (
        "one async POST every 10 ms (--latency-rate 100/s, absolute schedule) for 10 s to warm "
        "instances; "
        "per task started_at - created_at and finished_at - created_at from the store"
    )
    metrics = (
        Metric("submit->start p50", "ms", 2, higher_is_better=False),
        Metric("submit->start p95", "ms"),
        Metric("submit->start p99", "ms", 10, higher_is_better=False),
        Metric("submit->finish p50", "ms"),
        Metric("submit->finish p95", "ms"),
        Metric("submit->finish p99", "ms"),
        Metric("POST round trip p50", "ms"),
        Metric("POST round trip p99", "ms"),
    )

    def run(self, server: BenchServer, options: Options) -> RunResult:
        return asyncio.run(self._run(server, options))

    async def _run(self, server: BenchServer, options: Options) -> RunResult:
        headers = {"Content-Type": "application/json", "X-Invocation-Type": "Async"}
        path = server.invoke_url().removeprefix(server.base_url)
        rtts: list[float] = []
        ids: list[str] = []

        async def submit(client: RawClient, i: int) -> str:
            body = b'{"bench": "latency", "i": %d}' % i
            sent = time.perf_counter()
            answer = await asyncio.wait_for(client.post(path, body, headers), 30.0)
            rtts.append(time.perf_counter() - sent)
            if answer.status != 202:
                raise ScenarioError(f"invocation answered {answer.status}: {answer.body[:300]!r}")
            return str(json.loads(answer.body)["task_id"])

        async with RawClient(HOST, server.port) as client:
            warm = await asyncio.gather(
                *(submit(client, -1 - k) for k in range(options.warmup_tasks))
            )
            await wait_succeeded(server, warm, stall_s=30.0)
            rtts.clear()
            count = round(options.latency_rate * options.latency_seconds)
            interval = 1.0 / options.latency_rate
            loop = asyncio.get_running_loop()
            start = loop.time() + 0.05
            lags: list[float] = []
            pending: list[asyncio.Task[str]] = []
            for i in range(count):
                due = start + i * interval
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                lags.append(loop.time() - due)
                pending.append(asyncio.create_task(submit(client, i)))
            ids = list(await asyncio.gather(*pending))
        await wait_succeeded(server, ids, stall_s=30.0)
        server.check_alive()
        with db.connect(server.db_path) as conn:
            times = db.task_times(conn, ids)
        if len(times) != count or any(t.status != "Succeeded" for t in times):
            raise ScenarioError(f"{len(times)} of {count} tasks found, not all Succeeded")
        start_ms = [1000 * (t.started_at - t.created_at) for t in times if t.started_at]
        finish_ms = [1000 * (t.finished_at - t.created_at) for t in times if t.finished_at]
        metrics = {f"submit->start p{q}": percentile(start_ms, q) for q in (50, 95, 99)} | {
            f"submit->finish p{q}": percentile(finish_ms, q) for q in (50, 95, 99)
        }
        metrics["POST round trip p50"] = 1000 * percentile(rtts, 50)
        metrics["POST round trip p99"] = 1000 * percentile(rtts, 99)
        return RunResult(
            metrics,
            {"tasks": count, "max_send_lag_ms": 1000 * max(lags), "send_lags_s": lags},
        )


SCENARIOS: dict[str, Scenario] = {
    s.name: s for s in (Submit(), Batch(), Drain(), Latency(), GroupCommitOff())
}
