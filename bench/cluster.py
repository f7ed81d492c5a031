"""Scenarios of a cluster on PostgreSQL (issue #7): `cluster1`, `cluster2` and `cluster3` run
1, 2 or 3 nodes on one fresh PostgreSQL database each run and measure (a) the drain rate of
20,000 no-op tasks submitted in batches spread over the nodes, with each node's share, and
(b) submit→start latency of single async submissions at 100/s, round-robin over the nodes.

The harness's server is node 1 (its store is the run's fresh database, see `server_args`); the
scenario deploys its function through node 1, then starts nodes 2..N, which load the function
catalog when they start. The database server is `ASYNCFN_BENCH_PG` (a libpq URL of a database
the bench may create databases from; default `postgresql://postgres@127.0.0.1:5432/postgres`).
The databases created are dropped when the harness exits (kept with `--keep`).

`python -m bench.cluster RESULTS.json` prints the Markdown table of docs/benchmarks.md (one row
per node count, medians of the runs) from a `--json` file.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack, suppress
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg

from bench import procs
from bench.machine import busy_cpu_seconds, own_cpu_seconds
from bench.rawhttp import RawClient
from bench.scenarios import Metric, Options, RunResult, Scenario, ScenarioError, wait_until
from bench.server import HOST, NOOP_SOURCE, BenchServer, code_zip, env_args
from bench.stats import median, percentile

PG_ENV = "ASYNCFN_BENCH_PG"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
DB_PREFIX = "asyncfn_bench_cluster"

FUNCTION = "cluster"
BATCH_SIZE = 1000
BATCHES_IN_FLIGHT = 4
WARMUP_PER_NODE = 8
WARM_TIMEOUT_S = 30.0
STALL_S = 60.0
POLL_S = 0.2

_created: list[str] = []
"""Databases this process created, dropped at exit unless `--keep`."""
_keep = False


def admin_url() -> str:
    return os.environ.get(PG_ENV, DEFAULT_PG)


def database_url(name: str) -> str:
    """The admin URL with its database replaced by `name`."""
    parts = urlsplit(admin_url())
    return urlunsplit(parts._replace(path=f"/{name}"))


def create_database(nodes: int, keep: bool = False) -> str:
    """A fresh, empty database for one run of `cluster{nodes}` (0: a single-node scenario on
    PostgreSQL); answers its URL. `keep`: leave the databases when the harness exits."""
    global _keep
    _keep = _keep or keep
    name = f"{DB_PREFIX}{nodes}_{os.getpid()}_{len(_created) + 1}"
    with psycopg.connect(admin_url(), autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    if not _created:
        atexit.register(_drop_created)
    _created.append(name)
    return database_url(name)


def _drop_created() -> None:
    if _keep:
        print(f"bench: kept the databases {', '.join(_created)}", file=sys.stderr)
        return
    with suppress(psycopg.Error), psycopg.connect(admin_url(), autocommit=True) as conn:
        for name in _created:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postmaster_pid(url: str) -> int | None:
    """The PostgreSQL server's main process when it runs on this machine (parent of a backend)."""
    with psycopg.connect(url, connect_timeout=5) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
    if row is None:
        return None
    try:
        raw = Path(f"/proc/{int(row[0])}/stat").read_text()
    except OSError:
        return None  # another machine or container
    return int(raw[raw.rfind(")") + 2 :].split()[1])


def function_body(options: Options) -> dict[str, object]:
    """The no-op function of the bench (max_instances and instance_concurrency per node, from
    the command line) with one instance per node kept warm."""
    return options.function.body() | {"min_instances": 1, "timeout_s": 60}


# -- the store, read directly -------------------------------------------------------------------


def status_counts_after(conn: psycopg.Connection[Any], row: int) -> dict[str, int]:
    rows = conn.execute(
        "SELECT status, count(*) FROM tasks WHERE function = %s AND row > %s GROUP BY status",
        (FUNCTION, row),
    ).fetchall()
    return {str(status): int(n) for status, n in rows}


def last_row(conn: psycopg.Connection[Any]) -> int:
    found = conn.execute("SELECT coalesce(max(row), 0) FROM tasks").fetchone()
    return int(found[0]) if found else 0


async def wait_rows_succeeded(url: str, after: int, n: int) -> None:
    """Poll the store until `n` tasks of the function above row `after` have Succeeded."""
    with psycopg.connect(url, autocommit=True) as conn:

        def count() -> tuple[int, dict[str, int]]:
            counts = status_counts_after(conn, after)
            return counts.get("Succeeded", 0), counts

        await wait_until(count, n, stall_s=STALL_S, poll_s=POLL_S)


# -- the nodes --------------------------------------------------------------------------------


class Nodes:
    """The run's nodes (node 1 is the harness's server) and their CPU counters."""

    def __init__(self, servers: Sequence[BenchServer]) -> None:
        self.servers = list(servers)

    @property
    def names(self) -> list[str]:
        return [s.env.get("ASYNCFN_NODE_NAME", "bench") for s in self.servers]

    def cpu(self) -> list[float]:
        return [s.cpu_seconds() for s in self.servers]

    def check_alive(self) -> None:
        for server in self.servers:
            server.check_alive()


class CpuWindow:
    """CPU seconds used over a window: each node, PostgreSQL, the harness and the machine."""

    def __init__(self, nodes: Nodes, postmaster: int | None) -> None:
        self.nodes = nodes
        self.postmaster = postmaster
        self.started = time.monotonic()
        self.node0 = nodes.cpu()
        self.pg0 = self._pg()
        self.busy0 = busy_cpu_seconds()
        self.own0 = own_cpu_seconds()

    def _pg(self) -> float:
        return procs.tree_cpu_seconds(self.postmaster) if self.postmaster else math.nan

    def percents(self) -> dict[str, Any]:
        """% of one core over the window: per node, PostgreSQL, the harness, the machine."""
        wall = time.monotonic() - self.started
        nodes = [100 * (b - a) / wall for a, b in zip(self.node0, self.nodes.cpu(), strict=True)]
        return {
            "nodes": nodes,
            "postgres": 100 * (self._pg() - self.pg0) / wall,
            "harness": 100 * (own_cpu_seconds() - self.own0) / wall,
            "machine": 100 * (busy_cpu_seconds() - self.busy0) / wall,
            "wall_s": wall,
        }


async def wait_warm(clients: Sequence[httpx.AsyncClient]) -> None:
    """Wait until every node's stats show at least one instance of the function."""
    deadline = time.monotonic() + WARM_TIMEOUT_S
    for client in clients:
        while True:
            resp = await client.get(f"/v1/functions/{FUNCTION}/stats")
            if resp.status_code != 200:
                raise ScenarioError(f"GET stats answered {resp.status_code}: {resp.text[:300]}")
            instances = resp.json().get("instances")
            total = instances.get("total") if isinstance(instances, dict) else instances
            if int(total or 0) >= 1:
                break
            if time.monotonic() > deadline:
                raise ScenarioError(f"{client.base_url}: no instance of {FUNCTION} after warm-up")
            await asyncio.sleep(0.1)


async def submit_spread(clients: Sequence[httpx.AsyncClient], n: int) -> list[int]:
    """Submit `n` tasks in batches of BATCH_SIZE, batch i to node i mod N, BATCHES_IN_FLIGHT
    in flight in all; answers how many tasks each node accepted."""
    size = min(BATCH_SIZE, n)
    if n % size:
        raise ScenarioError(f"{n} tasks is not a multiple of the batch size {size}")
    body = json.dumps([{"payload": {"bench": "cluster"}}] * size).encode()
    todo = iter(range(n // size))
    accepted = [0] * len(clients)

    async def worker() -> None:
        for i in todo:
            node = i % len(clients)
            resp = await clients[node].post(
                f"/v1/functions/{FUNCTION}/invocations:batch",
                content=body,
                headers={"Content-Type": "application/json"},
            )
            if resp.status_code != 202:
                raise ScenarioError(f"batch answered {resp.status_code}: {resp.text[:300]}")
            items = resp.json()["items"]
            if len(items) != size or not all(item.get("created") for item in items):
                raise ScenarioError(f"batch: {len(items)} items, not {size} created")
            accepted[node] += size

    await asyncio.gather(*(worker() for _ in range(BATCHES_IN_FLIGHT)))
    return accepted


async def paced_submits(
    nodes: Nodes, rate: float, seconds: float, tag: str
) -> tuple[list[tuple[str, int]], list[float]]:
    """One async POST every 1/rate s (absolute schedule), round-robin over the nodes; answers
    (task id, node index) per task and the send lags (s)."""
    headers = {"Content-Type": "application/json", "X-Invocation-Type": "Async"}
    path = f"/v1/functions/{FUNCTION}/invocations"
    count = round(rate * seconds)
    async with AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(RawClient(HOST, s.port)) for s in nodes.servers]

        async def submit(i: int) -> tuple[str, int]:
            node = i % len(clients)
            body = b'{"bench": "%s", "i": %d}' % (tag.encode(), i)
            answer = await asyncio.wait_for(clients[node].post(path, body, headers), 30.0)
            if answer.status != 202:
                raise ScenarioError(f"invocation answered {answer.status}: {answer.body[:300]!r}")
            return str(json.loads(answer.body)["task_id"]), node

        loop = asyncio.get_running_loop()
        start = loop.time() + 0.05
        lags: list[float] = []
        pending: list[asyncio.Task[tuple[str, int]]] = []
        for i in range(count):
            due = start + i / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            lags.append(loop.time() - due)
            pending.append(asyncio.create_task(submit(i)))
        return list(await asyncio.gather(*pending)), lags


# -- the scenario -----------------------------------------------------------------------------


class Cluster(Scenario):
    """N nodes on one fresh PostgreSQL database: drain rate and submit→start latency."""

    def __init__(self, nodes: int) -> None:
        self.nodes = nodes
        self.name = f"cluster{nodes}"
        self.note = (
            f"{nodes} node(s) on one fresh PostgreSQL database; function deployed through node "
            "1 before the others start (max_instances and instance_concurrency per node from "
            "the command line, min_instances 1); drain: 20,000 no-op tasks (--drain-tasks) "
            "in batches of 1,000, batch i to node i mod N, 4 in flight; rate = tasks / (last "
            "finished_at - first created_at), share = tasks each node ran (tasks.node); "
            "latency: then 100 tasks/s (--latency-rate) of single async POSTs round-robin "
            "over the nodes for --latency-seconds; submit->start = started_at (claim) - "
            "created_at, submit->run = the attempt's instance_started_at - created_at; CPU in "
            "% of one core over the drain"
        )
        self.metrics = (
            Metric("drain tasks/s", "tasks/s"),
            *(Metric(f"node{k} share", "%") for k in range(1, nodes + 1)),
            Metric("submit->start p50", "ms"),
            Metric("submit->start p99", "ms"),
            Metric("submit->run p50", "ms"),
            Metric("submit->run p99", "ms"),
            *(Metric(f"node{k} CPU (drain)", "%") for k in range(1, nodes + 1)),
            Metric("postgres CPU (drain)", "%"),
            Metric("machine CPU (drain)", "%"),
        )

    def skip_reason(self, options: Options) -> str | None:
        try:
            with psycopg.connect(admin_url(), connect_timeout=5) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as exc:
            return f"no PostgreSQL at {PG_ENV}={admin_url()}: {exc}".strip()
        return None

    def server_args(self, options: Options) -> tuple[str, ...]:
        # Called once per run, before the harness starts node 1: a fresh database each run.
        url = create_database(self.nodes, options.keep)
        return env_args(ASYNCFN_STORE=url, ASYNCFN_NODE_NAME="node1")

    def run(self, server: BenchServer, options: Options) -> RunResult:
        url = server.env["ASYNCFN_STORE"]
        with httpx.Client(base_url=server.base_url, timeout=30.0) as client:
            for path, kwargs in (
                (f"/v1/functions/{FUNCTION}", {"json": function_body(options)}),
                (
                    f"/v1/functions/{FUNCTION}/code",
                    {
                        "content": code_zip(NOOP_SOURCE),
                        "headers": {"Content-Type": "application/zip"},
                    },
                ),
            ):
                resp = client.put(path, **kwargs)
                if resp.status_code not in (200, 201):
                    raise ScenarioError(f"PUT {path} answered {resp.status_code}: {resp.text}")
        extra = [
            BenchServer(
                python=options.python,
                function=options.function,
                extra_args=env_args(ASYNCFN_STORE=url, ASYNCFN_NODE_NAME=f"node{k}"),
                keep=options.keep,
            )
            for k in range(2, self.nodes + 1)
        ]
        try:
            for node in extra:
                node.start()  # no deploy: the function is in the catalog they load
            return asyncio.run(self._run(Nodes([server, *extra]), url, options))
        finally:
            for node in extra:
                node.stop()

    async def _run(self, nodes: Nodes, url: str, options: Options) -> RunResult:
        n = options.drain_tasks
        rate = options.latency_rate
        postmaster = postmaster_pid(url)
        async with AsyncExitStack() as stack:
            limits = httpx.Limits(max_connections=8, max_keepalive_connections=8)
            clients = [
                await stack.enter_async_context(
                    httpx.AsyncClient(base_url=s.base_url, limits=limits, timeout=120.0)
                )
                for s in nodes.servers
            ]
            await wait_warm(clients)
            with psycopg.connect(url, autocommit=True) as conn:
                before_warm = last_row(conn)
            warm, _ = await paced_submits(
                nodes, 50.0, WARMUP_PER_NODE * self.nodes / 50.0, "warm-up"
            )
            await wait_rows_succeeded(url, before_warm, len(warm))
            await wait_warm(clients)

            # (a) drain
            with psycopg.connect(url, autocommit=True) as conn:
                before_drain = last_row(conn)
            window = CpuWindow(nodes, postmaster)
            accepted = await submit_spread(clients, n)
            await wait_rows_succeeded(url, before_drain, n)
            cpu = window.percents()
            nodes.check_alive()

            # (b) latency, on the instances the drain left warm
            with psycopg.connect(url, autocommit=True) as conn:
                before_latency = last_row(conn)
            await asyncio.sleep(0.5)
            sent, lags = await paced_submits(nodes, rate, options.latency_seconds, "latency")
            await wait_rows_succeeded(url, before_latency, len(sent))
        nodes.check_alive()
        drain = self._drain_figures(url, before_drain, before_latency, n, nodes.names)
        latency = self._latency_figures(url, before_latency, sent, nodes.names)
        metrics: dict[str, float] = {"drain tasks/s": drain["rate"]}
        for k, share in enumerate(drain["shares"], start=1):
            metrics[f"node{k} share"] = share
        metrics |= latency["metrics"]
        for k, pct in enumerate(cpu["nodes"], start=1):
            metrics[f"node{k} CPU (drain)"] = pct
        metrics["postgres CPU (drain)"] = cpu["postgres"]
        metrics["machine CPU (drain)"] = cpu["machine"]
        return RunResult(
            metrics,
            {
                "nodes": self.nodes,
                "node_names": nodes.names,
                "drain_tasks": n,
                "drain_s": drain["span"],
                "drain_submitted_per_node": accepted,
                "drain_ran_per_node": drain["counts"],
                "drain_cpu_percent": cpu,
                "latency_rate": rate,
                "latency_tasks": len(sent),
                "latency_max_send_lag_ms": 1000 * max(lags, default=0.0),
                "latency_same_node_fraction": latency["same_node"],
                "latency_by_runner": latency["by_runner"],
                "postgres_cpu_measured": postmaster is not None,
            },
        )

    @staticmethod
    def _drain_figures(url: str, after: int, upto: int, n: int, names: list[str]) -> dict[str, Any]:
        with psycopg.connect(url) as conn:
            rows = conn.execute(
                "SELECT node, status, count(*), min(created_at), max(finished_at) FROM tasks "
                "WHERE function = %s AND row > %s AND row <= %s GROUP BY node, status",
                (FUNCTION, after, upto),
            ).fetchall()
        total = sum(int(r[2]) for r in rows)
        bad = [r for r in rows if r[1] != "Succeeded"]
        if total != n or bad:
            raise ScenarioError(f"drain: {total} of {n} tasks found; not Succeeded: {bad}")
        per_node = {str(r[0]): int(r[2]) for r in rows}
        unknown = set(per_node) - set(names)
        if unknown:
            raise ScenarioError(f"drain tasks ran on unknown nodes {unknown}")
        first = min(float(r[3]) for r in rows)
        last = max(float(r[4]) for r in rows)
        counts = [per_node.get(name, 0) for name in names]
        return {
            "rate": n / (last - first),
            "span": last - first,
            "counts": counts,
            "shares": [100.0 * c / n for c in counts],
        }

    @staticmethod
    def _latency_figures(
        url: str, after: int, sent: list[tuple[str, int]], names: list[str]
    ) -> dict[str, Any]:
        with psycopg.connect(url) as conn:
            rows = conn.execute(
                "SELECT t.id, t.status, t.node, t.created_at, t.started_at, "
                "a.instance_started_at FROM tasks t "
                "LEFT JOIN attempts a ON a.row = t.row AND a.number = t.attempt "
                "WHERE t.function = %s AND t.row > %s",
                (FUNCTION, after),
            ).fetchall()
        by_id = {str(r[0]): r for r in rows}
        if len(by_id) != len(sent) or any(by_id[i][1] != "Succeeded" for i, _ in sent):
            raise ScenarioError(f"latency: {len(by_id)} of {len(sent)} tasks, not all Succeeded")
        start_ms = [1000 * (float(by_id[i][4]) - float(by_id[i][3])) for i, _ in sent]
        run_ms = [
            1000 * (float(by_id[i][5]) - float(by_id[i][3]))
            for i, _ in sent
            if by_id[i][5] is not None
        ]
        same = sum(1 for i, node in sent if by_id[i][2] == names[node])
        by_runner: dict[str, dict[str, float]] = {}
        for name in names:
            mine = [ms for (i, _), ms in zip(sent, start_ms, strict=True) if by_id[i][2] == name]
            by_runner[name] = {
                "tasks": float(len(mine)),
                "p50_ms": percentile(mine, 50),
                "p99_ms": percentile(mine, 99),
            }
        return {
            "metrics": {
                "submit->start p50": percentile(start_ms, 50),
                "submit->start p99": percentile(start_ms, 99),
                "submit->run p50": percentile(run_ms, 50),
                "submit->run p99": percentile(run_ms, 99),
            },
            "same_node": same / len(sent),
            "by_runner": by_runner,
        }


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (Cluster(1), Cluster(2), Cluster(3))}


# -- the table of a results file -------------------------------------------------------------


def _fmt(value: float, digits: int = 0) -> str:
    return "-" if math.isnan(value) else f"{value:,.{digits}f}"


def table_from_json(path: Path) -> str:
    """The Markdown table (one row per node count, medians of the runs) of a `--json` file."""
    data = json.loads(path.read_text())
    lines = [
        "| nodes | drain (tasks/s) | runs | per-node share of the drain | submit→start "
        "p50 / p99 (ms) | submit→run p50 / p99 (ms) | CPU in the drain: nodes; PostgreSQL; "
        "machine (% of one core) |",
        "|---:|---:|---|---|---:|---:|---|",
    ]
    for nodes in (1, 2, 3):
        entry = data["scenarios"].get(f"cluster{nodes}")
        if not entry or not entry["runs"]:
            continue
        runs = [r["metrics"] for r in entry["runs"]]

        def mid(name: str, runs: list[dict[str, float]] = runs) -> float:
            return median([float(r.get(name, math.nan)) for r in runs])

        drain = [float(r["drain tasks/s"]) for r in runs]
        shares = " / ".join(f"{mid(f'node{k} share'):.0f} %" for k in range(1, nodes + 1))
        cpus = " + ".join(_fmt(mid(f"node{k} CPU (drain)")) for k in range(1, nodes + 1))
        lines.append(
            f"| {nodes} | {_fmt(median(drain))} | {', '.join(_fmt(v) for v in drain)} | "
            f"{shares} | {_fmt(mid('submit->start p50'), 1)} / "
            f"{_fmt(mid('submit->start p99'), 1)} | {_fmt(mid('submit->run p50'), 1)} / "
            f"{_fmt(mid('submit->run p99'), 1)} | {cpus}; {_fmt(mid('postgres CPU (drain)'))}; "
            f"{_fmt(mid('machine CPU (drain)'))} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m bench.cluster RESULTS.json")
    print(table_from_json(Path(sys.argv[1])))
