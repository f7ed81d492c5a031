"""Scenarios of flow control: `burst` (10,000 tasks against `max_instances` 8: the instance count
up, while it drains, and back down after the idle TTL) and `fairness` (a trickle function's queue
wait while a flood fills a node of 4 instances, for a function of the flood's tenant and one of
another tenant).

`python -m bench.flow RESULTS.json` prints the instance-count chart of `burst`'s median run
(by drain rate) from a `--json` file, as the Markdown of docs/benchmarks.md shows it.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import time
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench import db
from bench.scenarios import Metric, Options, RunResult, Scenario, ScenarioError, wait_until
from bench.server import NOOP_SOURCE, BenchServer, code_zip, env_args
from bench.stats import median, percentile

SAMPLE_S = 0.1
"""How often the stats of the functions are read while a scenario runs."""
BATCH_SIZE = 1000
BATCHES_IN_FLIGHT = 4

BURST_FUNCTION = "burst"
BURST_MAX_INSTANCES = 8
BURST_SLEEP_S = 0.005
IDLE_TTL_S = 2
"""`ASYNCFN_IDLE_TTL_S` of `burst`'s server: short, so the shrink after the burst shows."""
SHRINK_WAIT_S = 30.0
"""How long `burst` keeps sampling after the drain for the instances to go."""

NODE_MAX_INSTANCES = 4
"""`ASYNCFN_MAX_INSTANCES` of `fairness`'s server: the node's capacity, all functions."""
FLOOD_FUNCTION = "flood"
FLOOD_MAX_INSTANCES = 8
FLOOD_SLEEP_S = 0.020
TRICKLE_FUNCTION = "trickle"
TRICKLE_OTHER_FUNCTION = "trickle-b"
TRICKLE_MAX_INSTANCES = 2
TRICKLE_INTERVAL_S = 0.1
FLOOD_LEAD_S = 3.0
"""Seconds between the last flood batch and the first trickle task (the flood at full speed)."""
BASELINE_S = 2.0
"""The flood's rate alone is measured over the last BASELINE_S of FLOOD_LEAD_S."""
OTHER_TENANT = "beta"
ADMIN_KEY = "bench-admin-key-not-a-secret-0123456789"
"""`fairness` turns auth on (an admin key) to create a second tenant; it is loopback only."""


def sleeper_source(seconds: float) -> str:
    return f"import time\n\n\ndef handler(event, context):\n    time.sleep({seconds!r})\n"


def function_body(max_instances: int) -> dict[str, object]:
    return {
        "runtime": "python",
        "handler": "main:handler",
        "min_instances": 0,
        "max_instances": max_instances,
        "instance_concurrency": 1,
        "timeout_s": 60,
    }


# -- samples of GET /v1/functions/{name}/stats -----------------------------------------------


@dataclass(frozen=True, slots=True)
class Sample:
    """One read of a function's stats: client wall time, waiting and running tasks, instances.

    `busy`, `idle`, `starting` and `target` are None when the server answers `instances` as a
    bare count (before the autoscaler's shape `{total, idle, busy, starting, target}`)."""

    at: float
    queued: int
    running: int
    total: int
    busy: int | None = None
    idle: int | None = None
    starting: int | None = None
    target: int | None = None

    def row(self, t0: float) -> list[float | int | None]:
        return [
            round(self.at - t0, 3),
            self.queued,
            self.running,
            self.total,
            self.busy,
            self.idle,
            self.starting,
            self.target,
        ]


SAMPLE_COLUMNS = ("t_s", "queued", "running", "total", "busy", "idle", "starting", "target")


def _opt_int(value: object) -> int | None:
    return int(value) if isinstance(value, int | float) else None


def parse_stats(at: float, body: dict[str, Any]) -> Sample:
    """A `Sample` from a stats answer, whichever shape its `instances` has."""
    instances = body.get("instances")
    queued, running = int(body.get("queued") or 0), int(body.get("running") or 0)
    if isinstance(instances, dict):
        return Sample(
            at,
            queued,
            running,
            int(instances.get("total") or 0),
            _opt_int(instances.get("busy")),
            _opt_int(instances.get("idle")),
            _opt_int(instances.get("starting")),
            _opt_int(instances.get("target")),
        )
    return Sample(at, queued, running, int(instances or 0))


@dataclass(slots=True)
class Watched:
    """A function the sampler reads, through a client that acts in the function's tenant."""

    name: str
    client: httpx.AsyncClient
    samples: list[Sample]
    decisions: Any = None
    """The last `autoscaler.decisions` the stats answered (when the server has them)."""


async def sample_loop(watched: Sequence[Watched], stop: asyncio.Event) -> None:
    """Read every watched function's stats every SAMPLE_S (absolute schedule) until `stop`."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    tick = 0
    while not stop.is_set():
        for w in watched:
            resp = await w.client.get(f"/v1/functions/{w.name}/stats")
            if resp.status_code != 200:
                raise ScenarioError(f"GET {w.name}/stats answered {resp.status_code}: {resp.text}")
            body = resp.json()
            w.samples.append(parse_stats(time.time(), body))
            scaler = body.get("autoscaler")
            if isinstance(scaler, dict) and "decisions" in scaler:
                w.decisions = scaler["decisions"]
        tick += 1
        delay = start + tick * SAMPLE_S - loop.time()
        if delay > 0:
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)


def node_instances(metrics_text: str) -> int:
    """The node's live instance processes: the sum of `asyncfn_instances` in /metrics (one
    snapshot of every function's pools, unlike stats read one function after the other)."""
    total = 0.0
    for line in metrics_text.splitlines():
        if line.startswith("asyncfn_instances{") or line.startswith("asyncfn_instances "):
            total += float(line.rsplit(" ", 1)[1])
    return round(total)


async def node_loop(
    client: httpx.AsyncClient, stop: asyncio.Event, out: list[tuple[float, int]]
) -> None:
    """Read the node's instance count from /metrics every SAMPLE_S until `stop`."""
    while not stop.is_set():
        resp = await client.get("/metrics")
        if resp.status_code != 200:
            raise ScenarioError(f"GET /metrics answered {resp.status_code}: {resp.text[:300]}")
        out.append((time.time(), node_instances(resp.text)))
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SAMPLE_S)


# -- the API calls the scenarios make ----------------------------------------------------------


def client_for(server: BenchServer, tenant: str | None = None) -> httpx.AsyncClient:
    headers = dict(server.auth_headers)
    if tenant is not None:
        headers["X-Asyncfn-Tenant"] = tenant
    limits = httpx.Limits(max_connections=8, max_keepalive_connections=8)
    return httpx.AsyncClient(
        base_url=server.base_url, headers=headers, limits=limits, timeout=120.0
    )


async def deploy(client: httpx.AsyncClient, name: str, body: dict[str, object], src: str) -> None:
    resp = await client.put(f"/v1/functions/{name}", json=body)
    if resp.status_code not in (200, 201):
        raise ScenarioError(f"PUT function {name} answered {resp.status_code}: {resp.text}")
    resp = await client.put(
        f"/v1/functions/{name}/code",
        content=code_zip(src),
        headers={"Content-Type": "application/zip"},
    )
    if resp.status_code not in (200, 201):
        raise ScenarioError(f"PUT code of {name} answered {resp.status_code}: {resp.text}")


async def submit_batches(client: httpx.AsyncClient, name: str, n: int) -> list[str]:
    """Submit `n` tasks to `name` in batches of BATCH_SIZE, BATCHES_IN_FLIGHT at once."""
    size = min(BATCH_SIZE, n)
    if n % size:
        raise ScenarioError(f"{n} tasks is not a multiple of the batch size {size}")
    body = json.dumps([{"payload": {"bench": name}}] * size).encode()
    todo = iter(range(n // size))
    ids: list[str] = []

    async def worker() -> None:
        for _ in todo:
            resp = await client.post(
                f"/v1/functions/{name}/invocations:batch",
                content=body,
                headers={"Content-Type": "application/json"},
            )
            if resp.status_code != 202:
                raise ScenarioError(f"batch to {name} answered {resp.status_code}: {resp.text}")
            items = resp.json()["items"]
            if len(items) != size or not all(item.get("created") for item in items):
                raise ScenarioError(f"batch to {name}: {len(items)} items, not {size} created")
            ids.extend(str(item["task_id"]) for item in items)

    await asyncio.gather(*(worker() for _ in range(BATCHES_IN_FLIGHT)))
    return ids


async def invoke(client: httpx.AsyncClient, name: str, body: bytes) -> str:
    resp = await client.post(
        f"/v1/functions/{name}/invocations",
        content=body,
        headers={"Content-Type": "application/json", "X-Invocation-Type": "Async"},
    )
    if resp.status_code != 202:
        raise ScenarioError(f"invocation of {name} answered {resp.status_code}: {resp.text}")
    return str(resp.json()["task_id"])


async def wait_all_succeeded(server: BenchServer, ids: list[str], stall_s: float = 30.0) -> None:
    """Poll the store (by id, every 0.2 s) until the tasks `ids` have all Succeeded."""
    with db.connect(server.db_path) as conn:

        def count() -> tuple[int, dict[str, int]]:
            counts: dict[str, int] = {}
            for t in db.task_times(conn, ids):
                counts[t.status] = counts.get(t.status, 0) + 1
            return counts.get("Succeeded", 0), counts

        await wait_until(count, len(ids), stall_s=stall_s, poll_s=0.2)


async def wait_function_succeeded(server: BenchServer, name: str, n: int) -> None:
    """Poll the store's counts of function `name` until `n` of its tasks have Succeeded."""
    with db.connect(server.db_path) as conn:

        def count() -> tuple[int, dict[str, int]]:
            counts = db.status_counts(conn, name)
            return counts.get("Succeeded", 0), counts

        await wait_until(count, n, stall_s=30.0, poll_s=0.1)


# -- the instance-count chart ----------------------------------------------------------------

BLOCKS = " ▁▂▃▄▅▆▇█"


def _columns(
    rows: Sequence[Sequence[float | int | None]], step: float, split: bool
) -> tuple[list[tuple[int, int]], list[int]]:
    """Per column of `step` seconds: (most instances, most busy ones), and the most queued."""
    columns = int(float(rows[-1][0] or 0.0) / step) + 1
    totals: list[int | None] = [None] * columns
    busies = [0] * columns
    queued = [0] * columns
    for row in rows:
        col = min(columns - 1, int(float(row[0] or 0.0) / step))
        total = int(row[3] or 0)
        totals[col] = max(total, totals[col] or 0)
        busies[col] = max(min(int(row[4] or 0) if split else total, total), busies[col])
        queued[col] = max(int(row[1] or 0), queued[col])
    last, last_busy = 0, 0
    filled: list[tuple[int, int]] = []
    for value, busy in zip(totals, busies, strict=True):  # no sample: repeat the column before
        if value is not None:
            last, last_busy = value, busy
        filled.append((last, last_busy))
    return filled, queued


def instance_chart(
    rows: Sequence[Sequence[float | int | None]],
    *,
    ceiling: int,
    title: str,
    width: int = 72,
    marks: Sequence[tuple[float, str]] = (),
) -> str:
    """A text step chart of the instances in sampled `rows` (see SAMPLE_COLUMNS) over time, one
    column per time step (its highest count; █ busy, ░ idle or starting when the server says
    which), and a sparkline of the queue under it.

    `marks` are (t, letter) put under the time axis (e.g. when the drain ended)."""
    if not rows:
        return f"{title}\n(no samples)"
    step = 0.25
    while float(rows[-1][0] or 0.0) / step >= width:
        step *= 2
    split = any(row[4] is not None for row in rows)
    filled, queued = _columns(rows, step, split)
    top = max(ceiling, *(total for total, _ in filled))
    lines = [title]
    for level in range(top, 0, -1):
        label = f"{level:>3} ┤" if level in (top, ceiling, top // 2, 1) else "    │"
        bar = "".join(
            "█" if busy >= level else "░" if total >= level else " " for total, busy in filled
        )
        lines.append(label + bar)
    lines.append("  0 └" + "─" * len(filled))
    axis = [" "] * len(filled)
    for col in range(0, len(filled), 8):
        for k, ch in enumerate(f"{col * step:g}"):
            if col + k < len(filled):
                axis[col + k] = ch
    lines.append("     " + "".join(axis) + "  s")
    marked = [" "] * len(filled)
    for t, letter in marks:
        if 0 <= int(t / step) < len(filled):
            marked[int(t / step)] = letter
    if marks:
        lines.append("     " + "".join(marked).rstrip())
    most = max(queued) or 1
    spark = "".join(BLOCKS[math.ceil(8 * q / most)] for q in queued)
    lines.append(f"queue│{spark}  (▁ to █: 0 to {most:,} queued)")
    legend = "█ busy, ░ idle or starting" if split else "█ instances (busy ones not known)"
    lines.append(f"     {legend}; one column = {step:g} s")
    return "\n".join(lines)


def burst_chart(rows: Sequence[Sequence[float | int | None]], drained_t: float) -> str:
    return instance_chart(
        rows,
        ceiling=BURST_MAX_INSTANCES,
        title=(
            f"instances of `{BURST_FUNCTION}` (max_instances {BURST_MAX_INSTANCES}, idle TTL "
            f"{IDLE_TTL_S} s) from the first batch; D = the last task finished"
        ),
        marks=[(drained_t, "D")],
    )


# -- burst -----------------------------------------------------------------------------------


class Burst(Scenario):
    name = "burst"
    note = (
        "10,000 tasks (--drain-tasks / 2) in batches of 1,000 to a function of max_instances 8, "
        "min_instances 0, instance_concurrency 1 whose handler sleeps 5 ms, on a server with "
        "ASYNCFN_IDLE_TTL_S=2; its stats read every 100 ms until the instances are back to 0; "
        "drain = tasks / (last finished_at - first created_at)"
    )
    metrics = (
        Metric("drain tasks/s", "tasks/s"),
        Metric("time to 8 instances (stats)", "ms"),
        Metric("8th instance's first task", "ms"),
        Metric("peak instances", "instances", BURST_MAX_INSTANCES, higher_is_better=False),
        Metric("instances used", "instances"),
        Metric("back to 0 instances after drain", "s"),
        Metric("server CPU", "%"),
    )

    def server_args(self, options: Options) -> tuple[str, ...]:
        return env_args(ASYNCFN_IDLE_TTL_S=IDLE_TTL_S)

    def run(self, server: BenchServer, options: Options) -> RunResult:
        return asyncio.run(self._run(server, options))

    async def _run(self, server: BenchServer, options: Options) -> RunResult:
        n = options.drain_tasks // 2
        name = BURST_FUNCTION
        async with client_for(server) as client:
            await deploy(
                client, name, function_body(BURST_MAX_INSTANCES), sleeper_source(BURST_SLEEP_S)
            )
            watched = Watched(name, client, [])
            stop = asyncio.Event()
            t0 = time.time()
            cpu0 = server.cpu_seconds()
            sampler = asyncio.create_task(sample_loop([watched], stop))
            try:
                ids = await submit_batches(client, name, n)
                submitted = time.time()
                await wait_function_succeeded(server, name, n)
                drained = time.time()
                cpu = server.cpu_seconds() - cpu0
                deadline = drained + SHRINK_WAIT_S
                while time.time() < deadline and not sampler.done():
                    last = watched.samples[-1] if watched.samples else None
                    if last is not None and last.at > drained and last.total == 0:
                        break
                    await asyncio.sleep(SAMPLE_S)
            finally:
                stop.set()
                await sampler  # raises what the sampler met
        server.check_alive()
        with db.connect(server.db_path) as conn:
            times = db.task_times(conn, ids)
        if len(times) != n or any(t.status != "Succeeded" for t in times):
            raise ScenarioError(f"{len(times)} of {n} tasks found, not all Succeeded")
        first_created = min(t.created_at for t in times)
        last_finished = max(t.finished_at or math.nan for t in times)
        first_on: dict[str, float] = {}
        for t in times:
            if t.instance_id is not None and t.started_at is not None:
                first_on[t.instance_id] = min(first_on.get(t.instance_id, math.inf), t.started_at)
        starts = sorted(first_on.values())
        samples = watched.samples
        peak = max((s.total for s in samples), default=0)
        full = next((s.at for s in samples if s.total >= BURST_MAX_INSTANCES), math.nan)
        empty = next((s.at for s in samples if s.at > last_finished and s.total == 0), math.nan)
        rows = [s.row(t0) for s in samples]
        chart = burst_chart(rows, last_finished - t0)
        print(chart, file=sys.stderr, flush=True)
        return RunResult(
            {
                "drain tasks/s": n / (last_finished - first_created),
                "time to 8 instances (stats)": 1000 * (full - t0),
                "8th instance's first task": (
                    1000 * (starts[BURST_MAX_INSTANCES - 1] - first_created)
                    if len(starts) >= BURST_MAX_INSTANCES
                    else math.nan
                ),
                "peak instances": float(peak),
                "instances used": float(len(first_on)),
                "back to 0 instances after drain": empty - last_finished,
                "server CPU": 100.0 * cpu / (drained - t0),
            },
            {
                "tasks": n,
                "handler_sleep_s": BURST_SLEEP_S,
                "idle_ttl_s": IDLE_TTL_S,
                "submit_wall_s": submitted - t0,
                "drain_s": last_finished - first_created,
                "instances_shape": "object" if any(s.busy is not None for s in samples) else "int",
                "sample_columns": SAMPLE_COLUMNS,
                "samples": rows,
                "last_finished_t_s": last_finished - t0,
                "autoscaler_decisions": watched.decisions,
                "chart": chart,
            },
        )


# -- fairness --------------------------------------------------------------------------------


class Fairness(Scenario):
    name = "fairness"
    note = (
        "node capacity 4 instances (ASYNCFN_MAX_INSTANCES=4, auth on for a 2nd tenant); one "
        "warm-up task per trickle function, then 20,000 tasks (--drain-tasks) of `flood` "
        "(max_instances 8, sleeps 20 ms) at once; 3 s later (flood rate alone over the last "
        "2 s: 'before'), for 15 s (1.5 x --latency-seconds) one no-op task every 100 ms to "
        "`trickle` (max_instances 2, same tenant) and, 50 ms apart, to `trickle-b` (another "
        "tenant); wait = started_at - created_at; flood rate = its tasks finished in that "
        "window / window; node instances = sum of asyncfn_instances in /metrics every 100 ms"
    )
    metrics = (
        Metric("trickle wait p50", "ms"),
        Metric("trickle wait p99", "ms"),
        Metric("trickle wait max", "ms"),
        Metric("other tenant wait p50", "ms"),
        Metric("other tenant wait p99", "ms"),
        Metric("flood tasks/s in window", "tasks/s"),
        Metric("flood tasks/s before", "tasks/s"),
        Metric("peak node instances", "instances", NODE_MAX_INSTANCES, higher_is_better=False),
        Metric("peak of the stats' sum", "instances"),
    )

    def server_args(self, options: Options) -> tuple[str, ...]:
        return env_args(ASYNCFN_MAX_INSTANCES=NODE_MAX_INSTANCES, ASYNCFN_ADMIN_KEY=ADMIN_KEY)

    def run(self, server: BenchServer, options: Options) -> RunResult:
        return asyncio.run(self._run(server, options))

    async def _run(self, server: BenchServer, options: Options) -> RunResult:
        flood_n = options.drain_tasks
        seconds = 1.5 * options.latency_seconds
        async with client_for(server) as own, client_for(server, OTHER_TENANT) as other:
            made = await own.post("/v1/tenants", json={"name": OTHER_TENANT})
            if made.status_code != 201:
                raise ScenarioError(f"POST /v1/tenants answered {made.status_code}: {made.text}")
            await deploy(
                own,
                FLOOD_FUNCTION,
                function_body(FLOOD_MAX_INSTANCES),
                sleeper_source(FLOOD_SLEEP_S),
            )
            trickle_body = function_body(TRICKLE_MAX_INSTANCES)
            await deploy(own, TRICKLE_FUNCTION, trickle_body, NOOP_SOURCE)
            await deploy(other, TRICKLE_OTHER_FUNCTION, trickle_body, NOOP_SOURCE)
            watched = [
                Watched(FLOOD_FUNCTION, own, []),
                Watched(TRICKLE_FUNCTION, own, []),
                Watched(TRICKLE_OTHER_FUNCTION, other, []),
            ]
            warm = [
                await invoke(own, TRICKLE_FUNCTION, b'"warm"'),
                await invoke(other, TRICKLE_OTHER_FUNCTION, b'"warm"'),
            ]
            await wait_all_succeeded(server, warm)  # each trickle has a warm instance
            stop = asyncio.Event()
            node: list[tuple[float, int]] = []
            sampler = asyncio.gather(sample_loop(watched, stop), node_loop(own, stop, node))
            try:
                t0 = time.time()
                await submit_batches(own, FLOOD_FUNCTION, flood_n)
                submitted = time.time()
                await asyncio.sleep(FLOOD_LEAD_S)
                own_ids, other_ids, window = await self._trickle(own, other, seconds)
                await wait_all_succeeded(server, own_ids + other_ids)
            finally:
                stop.set()
                with suppress(httpx.HTTPError):  # the flood need not drain before the stop
                    await own.post(f"/v1/functions/{FLOOD_FUNCTION}:suspend")
                await sampler
        server.check_alive()
        start, end = window
        with db.connect(server.db_path) as conn:
            own_times = db.task_times(conn, own_ids)
            other_times = db.task_times(conn, other_ids)
            in_window, before = (
                conn.execute(
                    "SELECT count(*) FROM tasks WHERE function = ? AND status = 'Succeeded' "
                    "AND finished_at >= ? AND finished_at < ?",
                    (FLOOD_FUNCTION, lo, hi),
                ).fetchone()[0]
                for lo, hi in ((start, end), (start - BASELINE_S, start))
            )
            flood_counts = db.status_counts(conn, FLOOD_FUNCTION)
        own_wait = self._waits(own_times, len(own_ids))
        other_wait = self._waits(other_times, len(other_ids))
        node_peak = max((n for _, n in node), default=0)
        return RunResult(
            {
                "trickle wait p50": percentile(own_wait, 50),
                "trickle wait p99": percentile(own_wait, 99),
                "trickle wait max": max(own_wait),
                "other tenant wait p50": percentile(other_wait, 50),
                "other tenant wait p99": percentile(other_wait, 99),
                "flood tasks/s in window": in_window / (end - start),
                "flood tasks/s before": before / BASELINE_S,
                "peak node instances": float(node_peak),
                "peak of the stats' sum": float(self._stats_peak(watched)),
            },
            {
                "flood_tasks": flood_n,
                "flood_statuses": flood_counts,
                "trickle_tasks": len(own_ids),
                "window_s": end - start,
                "flood_submit_wall_s": submitted - t0,
                "peak_instances": {
                    w.name: max((s.total for s in w.samples), default=0) for w in watched
                },
                "sample_columns": SAMPLE_COLUMNS,
                "samples": {w.name: [s.row(t0) for s in w.samples] for w in watched},
                "node_instances": [(round(at - t0, 3), n) for at, n in node],
                "trickle_wait_ms": own_wait,
                "other_tenant_wait_ms": other_wait,
                "autoscaler_decisions": {w.name: w.decisions for w in watched},
            },
        )

    @staticmethod
    async def _trickle(
        own: httpx.AsyncClient, other: httpx.AsyncClient, seconds: float
    ) -> tuple[list[str], list[str], tuple[float, float]]:
        """One task every TRICKLE_INTERVAL_S to each trickle function (absolute schedule, the
        other tenant's half an interval later) for `seconds`; answers both id lists and the
        window (wall times of the first submit and one interval after the last)."""
        count = round(seconds / TRICKLE_INTERVAL_S)
        loop = asyncio.get_running_loop()
        start = loop.time() + 0.05
        wall_start = time.time() + 0.05

        async def paced(client: httpx.AsyncClient, name: str, offset: float) -> list[str]:
            pending: list[asyncio.Task[str]] = []
            for i in range(count):
                delay = start + offset + i * TRICKLE_INTERVAL_S - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                body = b'{"bench": "trickle", "i": %d}' % i
                pending.append(asyncio.create_task(invoke(client, name, body)))
            return list(await asyncio.gather(*pending))

        own_ids, other_ids = await asyncio.gather(
            paced(own, TRICKLE_FUNCTION, 0.0),
            paced(other, TRICKLE_OTHER_FUNCTION, TRICKLE_INTERVAL_S / 2),
        )
        return own_ids, other_ids, (wall_start, wall_start + count * TRICKLE_INTERVAL_S)

    @staticmethod
    def _waits(times: list[db.TaskTimes], want: int) -> list[float]:
        if len(times) != want or any(t.status != "Succeeded" for t in times):
            raise ScenarioError(f"{len(times)} of {want} trickle tasks found, not all Succeeded")
        return [1000 * (t.started_at - t.created_at) for t in times if t.started_at is not None]

    @staticmethod
    def _stats_peak(watched: Sequence[Watched]) -> int:
        """The most instances of the three functions at one sampling tick (each function's
        stats read a few ms apart, so an instance moving from one to another can count twice)."""
        ticks = min(len(w.samples) for w in watched)
        return max((sum(w.samples[i].total for w in watched) for i in range(ticks)), default=0)


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (Burst(), Fairness())}


# -- the chart of a results file -------------------------------------------------------------


def chart_from_json(path: Path) -> str:
    """The instance chart of `burst`'s median run (by drain rate) in a `--json` results file."""
    data = json.loads(path.read_text())
    runs = data["scenarios"]["burst"]["runs"]
    if not runs:
        raise SystemExit(f"{path}: no completed run of `burst`")
    rates = [float(r["metrics"]["drain tasks/s"]) for r in runs]
    mid = median(rates)
    chosen = min(runs, key=lambda r: abs(float(r["metrics"]["drain tasks/s"]) - mid))
    return burst_chart(chosen["info"]["samples"], float(chosen["info"]["last_finished_t_s"]))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m bench.flow RESULTS.json")
    print(chart_from_json(Path(sys.argv[1])))
