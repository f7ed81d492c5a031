"""Scenario `depth` (issue #9, scenario 7): does a deep queue slow the server down?

One run measures the same four figures twice on one fresh server: first with (almost) nothing
queued, then after `--depth-tasks` tasks (1,000,000; 100,000 with `--quick`) delayed 1 h have
been loaded into the no-op function with invocations:batch (1,000 per request, 4 in flight):

1. the single-submission rate: wrk on `POST /v1/functions/noop/invocations`, delayed 1 h, for
   `--duration` s (the tasks join the queue);
2. the dispatch rate: 5,000 no-op tasks of a function of their own (one per phase, so both
   start with cold instances), submitted in batches with one `run_at` `--drain-lead` s ahead;
   rate = 5,000 / (last `finished_at` - `run_at`), read from the store (read-only, by id);
3. `GET /v1/tasks/{id}` latency p50/p99 over 2,000 requests of random existing task ids
   (rows drawn from the whole table), 8 in flight on keep-alive connections;
4. the server process's RSS (`VmRSS`).

The ratios (deep/empty for latency and memory, empty/deep for the rates) have the target
<= 2 of the issue. Opt-in (`--scenarios depth`): loading 1,000,000 rows takes about a minute.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from bench import db, wrk
from bench.rawhttp import RawClient
from bench.scenarios import (
    HOUR_S,
    Metric,
    Options,
    RunResult,
    Scenario,
    ScenarioError,
    post_batches,
    rfc3339,
    wait_until,
)
from bench.server import HOST, BenchServer
from bench.stats import percentile

DISPATCH_TASKS = 5_000
GET_REQUESTS = 2_000
GET_IN_FLIGHT = 8
SETTLE_S = 2.0
RATIO_TARGET = 2.0
PHASES = ("empty", "deep")
DISPATCH_FUNCTION = "depth-{phase}"
"""The function each phase's dispatch tasks run in."""
STALL_S = 30.0
POLL_S = 0.25
CHUNK = 500
"""Ids per query (under SQLite's variable limit)."""


@dataclass(frozen=True, slots=True)
class PhaseFigures:
    """What one phase measured."""

    submit_per_s: float
    submit_p99_ms: float
    dispatch_per_s: float
    get_p50_ms: float
    get_p99_ms: float
    rss_mb: float
    info: dict[str, Any]


def _tenant(conn: sqlite3.Connection) -> str:
    """The tenant of the newest task (the bench's tasks all share the default one)."""
    row = conn.execute("SELECT tenant FROM tasks ORDER BY row DESC LIMIT 1").fetchone()
    if row is None:
        raise ScenarioError("the store holds no task")
    return str(row[0])


def _statuses(
    conn: sqlite3.Connection, tenant: str, ids: list[str]
) -> list[tuple[str, float, float]]:
    """(status, run_at, finished_at or NaN) of the tasks `ids`, by the (tenant, id) index."""
    found: list[tuple[str, float, float]] = []
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        marks = ",".join("?" * len(chunk))
        rows = conn.execute(
            f"SELECT status, run_at, finished_at FROM tasks WHERE tenant = ? AND id IN ({marks})",
            [tenant, *chunk],
        )
        found.extend((str(s), float(r), math.nan if f is None else float(f)) for s, r, f in rows)
    return found


def _random_ids(conn: sqlite3.Connection, count: int) -> list[str]:
    """`count` ids of tasks drawn at random (by row) from the whole table."""
    low, high = conn.execute("SELECT min(row), max(row) FROM tasks").fetchone()
    rows = random.sample(range(int(low), int(high) + 1), min(count, int(high) - int(low) + 1))
    ids: list[str] = []
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        marks = ",".join("?" * len(chunk))
        ids.extend(
            str(r[0]) for r in conn.execute(f"SELECT id FROM tasks WHERE row IN ({marks})", chunk)
        )
    if not ids:
        raise ScenarioError("no task ids to read")
    return random.choices(ids, k=count) if len(ids) < count else ids


def submit_rate(server: BenchServer, options: Options) -> tuple[float, float, int]:
    """wrk's 202s per second, its p99 (ms) and the count of tasks it submitted."""
    result = wrk.run(
        server.invoke_url(),
        duration_s=options.duration_s,
        connections=options.connections,
        threads=min(options.threads, options.connections),
        delay_s=HOUR_S,
    )
    server.check_alive()
    if result.non202 or any(result.socket_errors.values()):
        raise ScenarioError(
            f"wrk: {result.non202} of {result.requests} answers not 202 (first "
            f"{result.first_bad_status}), socket errors {result.socket_errors}\n{result.output}"
        )
    return result.accepted_per_s, result.latency_ms["p99"], result.accepted


async def dispatch_rate(server: BenchServer, options: Options, function: str) -> float:
    """Tasks/s from `run_at` to the last `finished_at` of DISPATCH_TASKS due no-op tasks."""
    size = min(options.batch_size, DISPATCH_TASKS)
    run_at_s = time.time() + options.drain_lead_s
    item = {"payload": {"bench": "depth"}, "run_at": rfc3339(run_at_s)}
    body = json.dumps([item] * size).encode()
    wall, _, ids = await post_batches(
        server, body, DISPATCH_TASKS // size, size, options.batch_concurrency, function
    )
    if time.time() >= run_at_s:
        raise ScenarioError(
            f"submitting the dispatch tasks took {wall:.2f} s, past the "
            f"{options.drain_lead_s} s lead; raise --drain-lead"
        )
    with db.connect(server.db_path) as conn:
        tenant = _tenant(conn)
        last: list[tuple[str, float, float]] = []

        def count() -> tuple[int, dict[str, int]]:
            last[:] = _statuses(conn, tenant, ids)
            counts: dict[str, int] = {}
            for status, _, _ in last:
                counts[status] = counts.get(status, 0) + 1
            return counts.get("Succeeded", 0), counts

        await wait_until(count, len(ids), stall_s=STALL_S + options.drain_lead_s, poll_s=POLL_S)
    if len(last) != len(ids):
        raise ScenarioError(f"{len(last)} of {len(ids)} dispatch tasks found in the store")
    run_at = min(r for _, r, _ in last)  # as the server stored it (rfc3339 has ms)
    return len(ids) / (max(f for _, _, f in last) - run_at)


async def get_latencies(server: BenchServer) -> list[float]:
    """Seconds per `GET /v1/tasks/{id}` of GET_REQUESTS random ids, GET_IN_FLIGHT at a time."""
    with db.connect(server.db_path) as conn:
        ids = _random_ids(conn, GET_REQUESTS)
    todo = iter(ids)
    latencies: list[float] = []

    async def worker(client: RawClient) -> None:
        for task_id in todo:
            sent = time.perf_counter()
            answer = await asyncio.wait_for(client.get(f"/v1/tasks/{task_id}"), 30.0)
            latencies.append(time.perf_counter() - sent)
            if answer.status != 200:
                raise ScenarioError(f"GET task answered {answer.status}: {answer.body[:300]!r}")

    async with RawClient(HOST, server.port) as client:
        await asyncio.gather(*(worker(client) for _ in range(GET_IN_FLIGHT)))
    return latencies


def measure(server: BenchServer, options: Options, phase: str) -> PhaseFigures:
    submitted_per_s, submit_p99, accepted = submit_rate(server, options)
    dispatched_per_s = asyncio.run(
        dispatch_rate(server, options, DISPATCH_FUNCTION.format(phase=phase))
    )
    latencies = asyncio.run(get_latencies(server))
    server.check_alive()
    return PhaseFigures(
        submit_per_s=submitted_per_s,
        submit_p99_ms=submit_p99,
        dispatch_per_s=dispatched_per_s,
        get_p50_ms=1000 * percentile(latencies, 50),
        get_p99_ms=1000 * percentile(latencies, 99),
        rss_mb=server.rss_mb(),
        info={"wrk_accepted": accepted},
    )


class Depth(Scenario):
    name = "depth"
    max_runs = 1  # a minute of loading; its figures are ratios of two phases of the same run
    note = (
        "submit rate (wrk), dispatch rate (5,000 due no-op tasks), GET /v1/tasks/{id} p50/p99 "
        "(2,000 random ids, 8 in flight) and server RSS, first on an empty queue, then with "
        "--depth-tasks (1,000,000) tasks delayed 1 h queued; ratios must stay <= 2"
    )
    metrics = (
        Metric("submit/s, empty", "req/s"),
        Metric("submit/s, deep", "req/s"),
        Metric("submit ratio empty/deep", "x", RATIO_TARGET, higher_is_better=False),
        Metric("dispatch/s, empty", "tasks/s"),
        Metric("dispatch/s, deep", "tasks/s"),
        Metric("dispatch ratio empty/deep", "x", RATIO_TARGET, higher_is_better=False),
        Metric("GET p50, empty", "ms"),
        Metric("GET p50, deep", "ms"),
        Metric("GET p99, empty", "ms"),
        Metric("GET p99, deep", "ms"),
        Metric("GET p99 ratio deep/empty", "x", RATIO_TARGET, higher_is_better=False),
        Metric("RSS, empty", "MB"),
        Metric("RSS, deep", "MB"),
        Metric("RSS ratio deep/empty", "x", RATIO_TARGET, higher_is_better=False),
        Metric("load rows/s", "rows/s"),
        Metric("tasks queued", "tasks"),
    )

    def skip_reason(self, options: Options) -> str | None:
        try:
            wrk.wrk_path()
        except wrk.WrkError as exc:
            return str(exc)
        return None

    def run(self, server: BenchServer, options: Options) -> RunResult:
        n = options.depth_tasks
        size = min(options.batch_size, n)
        if n % size:
            raise ScenarioError(f"depth tasks ({n}) must be a multiple of the batch size ({size})")
        for phase in PHASES:
            server.deploy(DISPATCH_FUNCTION.format(phase=phase))
        time.sleep(1.0)  # let start-up work (migrations, first GC) settle
        empty = measure(server, options, "empty")
        item: dict[str, object] = {"payload": {"bench": "depth"}, "delay_s": HOUR_S}
        body = json.dumps([item] * size).encode()
        wall, _, ids = asyncio.run(
            post_batches(server, body, n // size, size, options.batch_concurrency)
        )
        if len(set(ids)) != n:
            raise ScenarioError(f"{len(set(ids))} distinct task ids for {n} tasks")
        del ids
        time.sleep(SETTLE_S)
        with db.connect(server.db_path) as conn:
            (queued,) = conn.execute(
                "SELECT count(*) FROM tasks WHERE status = 'Enqueued'"
            ).fetchone()
        if queued < n:
            raise ScenarioError(f"{queued} tasks Enqueued after loading {n}")
        deep = measure(server, options, "deep")
        return RunResult(
            {
                "submit/s, empty": empty.submit_per_s,
                "submit/s, deep": deep.submit_per_s,
                "submit ratio empty/deep": empty.submit_per_s / deep.submit_per_s,
                "dispatch/s, empty": empty.dispatch_per_s,
                "dispatch/s, deep": deep.dispatch_per_s,
                "dispatch ratio empty/deep": empty.dispatch_per_s / deep.dispatch_per_s,
                "GET p50, empty": empty.get_p50_ms,
                "GET p50, deep": deep.get_p50_ms,
                "GET p99, empty": empty.get_p99_ms,
                "GET p99, deep": deep.get_p99_ms,
                "GET p99 ratio deep/empty": deep.get_p99_ms / empty.get_p99_ms,
                "RSS, empty": empty.rss_mb,
                "RSS, deep": deep.rss_mb,
                "RSS ratio deep/empty": deep.rss_mb / empty.rss_mb,
                "load rows/s": n / wall,
                "tasks queued": float(queued),
            },
            {
                "depth_tasks": n,
                "load_wall_s": wall,
                "submit_p99_ms": {"empty": empty.submit_p99_ms, "deep": deep.submit_p99_ms},
                "empty": empty.info,
                "deep": deep.info,
            },
        )


SCENARIOS: dict[str, Scenario] = {"depth": Depth()}
