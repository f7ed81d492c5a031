"""`deliver`: result destinations, i.e. signed webhook deliveries per second to a local receiver."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import signal
import subprocess
import sys
import time
from types import TracebackType
from typing import Any

import httpx

from bench import db, procs
from bench.scenarios import (
    Metric,
    Options,
    RunResult,
    Scenario,
    ScenarioError,
    post_batches,
    rfc3339,
    wait_until,
)
from bench.server import FUNCTION, HOST, REPO, BenchServer
from bench.stats import percentile

SECRET = "s3cret"


class ReceiverProcess:
    """Context manager: `python -m bench.receiver` in a process (and session) of its own."""

    def __init__(self, secret: str = SECRET, check_every: int = 10) -> None:
        self.secret = secret
        self.check_every = check_every
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0

    @property
    def hook_url(self) -> str:
        return f"http://{HOST}:{self.port}/hook"

    def __enter__(self) -> ReceiverProcess:
        argv = [sys.executable, "-m", "bench.receiver", self.secret]
        argv += ["--check-every", str(self.check_every)]
        self.proc = subprocess.Popen(
            argv, cwd=REPO, stdout=subprocess.PIPE, text=True, start_new_session=True
        )
        try:
            assert self.proc.stdout is not None
            line = self.proc.stdout.readline()  # "PORT n" once listening
            if not line.startswith("PORT "):
                raise ScenarioError(f"the receiver did not start: {line!r}")
            self.port = int(line.split()[1])
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stats(self) -> dict[str, Any]:
        self.check_alive()
        resp = httpx.get(f"http://{HOST}:{self.port}/stats", timeout=30.0)
        resp.raise_for_status()
        value = resp.json()
        if not isinstance(value, dict):
            raise ScenarioError(f"the receiver's /stats is not an object: {resp.text[:200]}")
        return value

    def cpu_seconds(self) -> float:
        return procs.tree_cpu_seconds(self.proc.pid) if self.proc is not None else 0.0

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise ScenarioError(f"the receiver exited with {self.proc.returncode}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(5.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def delivery_counts(conn: Any, function: str) -> dict[str, int]:
    rows = conn.execute(
        "SELECT status, count(*) FROM deliveries WHERE function = ? GROUP BY status", (function,)
    )
    return {str(status): int(n) for status, n in rows}


class Deliver(Scenario):
    name = "deliver"
    note = (
        "the no-op function with async.on_success = an http destination (a receiver process "
        "on 127.0.0.1 answering 204, checking 1 in 10 signatures); 5,000 tasks in batches "
        "with the same run_at 3 s ahead; from the store, deliveries/s = tasks / (last "
        "delivered_at - first task finished_at) and per task lag = delivered_at - finished_at; "
        "the receiver must see every delivery id"
    )
    metrics = (
        Metric("deliveries/s", "deliveries/s"),
        Metric("delivery lag p50", "ms"),
        Metric("delivery lag p99", "ms"),
        Metric("delivery lag max", "ms"),
        Metric("task finish rate", "tasks/s"),
        Metric("delivered", "deliveries"),
        Metric("duplicates received", "requests"),
        Metric("server CPU", "%"),
        Metric("receiver CPU", "%"),
    )

    def run(self, server: BenchServer, options: Options) -> RunResult:
        with ReceiverProcess() as receiver:
            config = dataclasses.replace(
                options.function, on_success_url=receiver.hook_url, on_success_secret=SECRET
            )
            server.deploy(config=config)  # the same function, now with the destination
            return asyncio.run(self._run(server, receiver, options))

    async def _run(
        self, server: BenchServer, receiver: ReceiverProcess, options: Options
    ) -> RunResult:
        n = options.deliver_tasks
        size = min(options.batch_size, n)
        if n % size:
            raise ScenarioError(f"deliver tasks ({n}): not a multiple of the batch size ({size})")
        run_at = rfc3339(time.time() + options.drain_lead_s)
        body = json.dumps([{"payload": {"bench": "deliver"}, "run_at": run_at}] * size).encode()
        wall, _, ids = await post_batches(server, body, n // size, size, options.batch_concurrency)
        with db.connect(server.db_path) as conn:
            span = db.drain_span(conn, FUNCTION)
        if span.count != n or len(set(ids)) != n:
            raise ScenarioError(f"{span.count} tasks stored, {len(set(ids))} ids, for {n} sent")
        if not math.isnan(span.min_started_at) or time.time() >= span.min_run_at:
            raise ScenarioError(
                f"submitting took {wall:.2f} s, past the {options.drain_lead_s} s lead; "
                "raise --drain-lead"
            )
        cpu0, rcpu0 = server.cpu_seconds(), receiver.cpu_seconds()

        with db.connect(server.db_path) as conn:

            def count() -> tuple[int, dict[str, int]]:
                tasks = db.status_counts(conn, FUNCTION)
                deliveries = delivery_counts(conn, FUNCTION)
                if deliveries.get("dead"):
                    raise ScenarioError(f"dead deliveries: {deliveries}; tasks {tasks}")
                receiver.check_alive()
                shown = tasks | {f"delivery {k}": v for k, v in deliveries.items()}
                return deliveries.get("delivered", 0), shown

            await wait_until(count, n, stall_s=30.0 + options.drain_lead_s, poll_s=0.1)
            cpu_wall = time.time() - span.min_run_at
            cpu = server.cpu_seconds() - cpu0
            rcpu = receiver.cpu_seconds() - rcpu0
            span = db.drain_span(conn, FUNCTION)
            tasks = db.status_counts(conn, FUNCTION)
            rows = conn.execute(
                "SELECT d.id, d.status, d.attempts, d.created_at, d.delivered_at, t.finished_at "
                "FROM deliveries d JOIN tasks t ON t.row = d.row WHERE d.function = ?",
                (FUNCTION,),
            ).fetchall()
        server.check_alive()
        stats = receiver.stats()
        if tasks != {"Succeeded": n}:
            raise ScenarioError(f"expected exactly {n} Succeeded tasks, got {tasks}")
        if len(rows) != n or any(r[1] != "delivered" for r in rows):
            raise ScenarioError(f"{len(rows)} deliveries for {n} tasks, not all delivered")
        db_ids = {str(r[0]) for r in rows}
        seen: dict[str, int] = stats.pop("ids")
        if set(seen) != db_ids:
            missing, extra = len(db_ids - set(seen)), len(set(seen) - db_ids)
            raise ScenarioError(
                f"the receiver saw {len(seen)} distinct delivery ids: {missing} of the store's "
                f"{n} missing, {extra} unknown ones"
            )
        if stats["bad"]:
            raise ScenarioError(f"{stats['bad']} bad sampled requests: {stats['bad_examples']}")
        first_finished = min(float(r[5]) for r in rows)
        last_delivered = max(float(r[4]) for r in rows)
        lags_ms = [1000 * (float(r[4]) - float(r[5])) for r in rows]
        outbox_ms = [1000 * (float(r[3]) - float(r[5])) for r in rows]
        retried = sum(1 for r in rows if int(r[2]) > 1)
        elapsed = last_delivered - first_finished
        return RunResult(
            {
                "deliveries/s": n / elapsed,
                "delivery lag p50": percentile(lags_ms, 50),
                "delivery lag p99": percentile(lags_ms, 99),
                "delivery lag max": max(lags_ms),
                "task finish rate": n / (span.max_finished_at - span.min_run_at),
                "delivered": float(len(rows)),
                "duplicates received": float(stats["duplicates"]),
                "server CPU": 100.0 * cpu / cpu_wall,
                "receiver CPU": 100.0 * rcpu / cpu_wall,
            },
            {
                "tasks": n,
                "submit_wall_s": wall,
                "deliver_span_s": elapsed,
                "last_finished_after_first_s": span.max_finished_at - first_finished,
                "last_delivered_after_last_finished_s": last_delivered - span.max_finished_at,
                "retried_deliveries": retried,
                "outbox_created_after_finish_ms_p50": percentile(outbox_ms, 50),
                "outbox_created_after_finish_ms_max": max(outbox_ms),
                "receiver": stats,
            },
        )


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (Deliver(),)}
