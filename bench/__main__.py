"""`python -m bench`: run the scenarios on fresh servers and print one table of medians."""

from __future__ import annotations

import argparse
import signal
import sys
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from types import FrameType

import httpx

from bench import (
    cluster,
    coldstart,
    control,
    deliver,
    depth,
    flow,
    logs,
    pgstore,
    report,
    triggers,
    wrk,
)
from bench.machine import busy_cpu_seconds, busy_percent, describe, own_cpu_seconds
from bench.report import ScenarioResults
from bench.scenarios import SCENARIOS as BASE_SCENARIOS
from bench.scenarios import Options, RunResult, Scenario, ScenarioError
from bench.server import REPO, BenchServer, FunctionConfig, ServerError

SCENARIOS: dict[str, Scenario] = (
    BASE_SCENARIOS
    | deliver.SCENARIOS
    | control.SCENARIOS
    | logs.SCENARIOS
    | triggers.SCENARIOS
    | coldstart.SCENARIOS
    | flow.SCENARIOS
    | cluster.SCENARIOS
    | depth.SCENARIOS
    | pgstore.SCENARIOS
)
DEFAULT_ORDER = (
    "submit",
    "batch",
    "drain",
    "latency",
    "stop",
    "coldstart",
    "idle",
    "depth",
    "pg-submit",
    "pg-batch",
    "cluster1",
)
"""`make bench`: the figures of issue #9, on SQLite, then on PostgreSQL (`pg-*` and `cluster1`,
one node: its drain and latency; skipped, without failing, when there is no PostgreSQL)."""
MORE = (
    "deliver",
    "group-commit",
    "delay",
    "logs",
    "triggers",
    "burst",
    "fairness",
    "cluster2",
    "cluster3",
)
"""Run when named, or with `--scenarios all`."""
SKIP_IS_FINE = frozenset({"group-commit", "pg-submit", "pg-batch", "cluster1"})
"""Scenarios whose skip (no PostgreSQL, no inline mode) does not fail the harness."""


def default_python() -> str:
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument(
        "--scenarios",
        nargs="+",
        choices=(*DEFAULT_ORDER, *MORE, "all"),
        default=list(DEFAULT_ORDER),
        metavar="NAME",
        help=f"scenarios to run: by default {', '.join(DEFAULT_ORDER)}; also "
        f"{', '.join(MORE)}; `all` for every one",
    )
    p.add_argument("--runs", type=int, help="runs per scenario, each on a fresh server (3)")
    p.add_argument("--duration", type=int, help="seconds of each wrk run (10)")
    p.add_argument(
        "--quick", action="store_true", help="1 run, shorter and smaller scenarios: a smoke test"
    )
    p.add_argument("--connections", type=int, default=8, help="wrk connections (8)")
    p.add_argument("--batches", type=int, help="batches posted by `batch` (100)")
    p.add_argument(
        "--drain-tasks", type=int, help="tasks drained by `drain` and `cluster*` (20000)"
    )
    p.add_argument(
        "--drain-lead", type=float, default=3.0, help="seconds from submit to run_at (3)"
    )
    p.add_argument(
        "--deliver-tasks", type=int, help="tasks (one delivery each) of `deliver` (5000)"
    )
    p.add_argument("--latency-seconds", type=float, help="seconds of paced submits (10)")
    p.add_argument("--latency-rate", type=float, default=100.0, help="paced submits/s (100)")
    p.add_argument("--stop-tasks", type=int, help="tasks stopped by `stop`, per variant (50)")
    p.add_argument(
        "--stop-grace",
        type=float,
        default=0.2,
        metavar="S",
        help="stop_grace_s of `stop`'s SIGTERM-ignoring function (0.2)",
    )
    p.add_argument("--delay-tasks", type=int, help="delayed tasks submitted by `delay` (300)")
    p.add_argument("--idle-tasks", type=int, help="tasks delayed 1 h by `idle` (100000)")
    p.add_argument("--idle-window", type=float, help="seconds `idle` measures the CPU over (10)")
    p.add_argument("--trigger-scale", type=float, help="fraction of `triggers`' message counts (1)")
    p.add_argument("--depth-tasks", type=int, help="tasks delayed 1 h queued by `depth` (1000000)")
    p.add_argument("--max-instances", type=int, default=2, help="of the no-op function (2)")
    p.add_argument("--instance-concurrency", type=int, default=8, help="of the no-op function (8)")
    p.add_argument("--python", default=default_python(), help="interpreter running the server")
    p.add_argument("--json", type=Path, metavar="PATH", help="write the raw results as JSON")
    p.add_argument("--markdown", type=Path, metavar="PATH", help="write the table as Markdown")
    p.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        metavar="S",
        help="before each run, wait up to S seconds for the CPUs to be under 10%% busy",
    )
    p.add_argument("--keep", action="store_true", help="keep each server's data dir and log")
    args = p.parse_args(argv)
    if "all" in args.scenarios:
        args.scenarios = [*DEFAULT_ORDER, *MORE]
    quick = args.quick
    args.runs = args.runs or (1 if quick else 3)
    args.duration = args.duration or (3 if quick else 10)
    args.batches = args.batches or (10 if quick else 100)
    args.drain_tasks = args.drain_tasks or (4000 if quick else 20_000)
    args.deliver_tasks = args.deliver_tasks or (1000 if quick else 5_000)
    args.latency_seconds = args.latency_seconds or (3.0 if quick else 10.0)
    args.stop_tasks = args.stop_tasks or (10 if quick else 50)
    args.delay_tasks = args.delay_tasks or (100 if quick else 300)
    args.idle_tasks = args.idle_tasks or (10_000 if quick else 100_000)
    args.idle_window = args.idle_window or (3.0 if quick else 10.0)
    args.trigger_scale = args.trigger_scale or (0.1 if quick else 1.0)
    args.depth_tasks = args.depth_tasks or (100_000 if quick else 1_000_000)
    if args.runs < 1 or args.duration < 1:
        p.error("--runs and --duration must be at least 1")
    return args


def options_from(args: argparse.Namespace) -> Options:
    return Options(
        python=args.python,
        duration_s=args.duration,
        connections=args.connections,
        batches=args.batches,
        drain_tasks=args.drain_tasks,
        drain_lead_s=args.drain_lead,
        deliver_tasks=args.deliver_tasks,
        latency_rate=args.latency_rate,
        latency_seconds=args.latency_seconds,
        stop_tasks=args.stop_tasks,
        stop_kill_grace_s=args.stop_grace,
        delay_tasks=args.delay_tasks,
        idle_tasks=args.idle_tasks,
        idle_window_s=args.idle_window,
        trigger_scale=args.trigger_scale,
        depth_tasks=args.depth_tasks,
        function=FunctionConfig(args.max_instances, args.instance_concurrency),
        keep=args.keep,
    )


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def one_run(scenario: Scenario, options: Options) -> RunResult | str:
    """One run on a fresh server: its results, or what went wrong."""
    server = BenchServer(
        python=options.python,
        function=scenario.function_config(options),
        extra_args=scenario.server_args(options),
        keep=options.keep,
    )
    try:
        with server:
            busy0, own0, server0 = busy_cpu_seconds(), own_cpu_seconds(), server.cpu_seconds()
            started = time.monotonic()
            result = scenario.run(server, options)
            wall = time.monotonic() - started
            busy = busy_cpu_seconds() - busy0
            own = own_cpu_seconds() - own0
            used = server.cpu_seconds() - server0
            # CPU that neither the server nor the harness used: other processes on the machine.
            result.info["other_cpu_percent"] = max(0.0, 100.0 * (busy - own - used) / wall)
            return result
    except (ScenarioError, ServerError, wrk.WrkError, httpx.HTTPError, OSError) as exc:
        return f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # an unexpected answer from the server: keep the other runs
        return f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"


def wait_idle(limit_s: float, threshold: float = 10.0) -> None:
    """Wait (up to `limit_s`) until other processes leave the CPUs mostly idle."""
    deadline = time.monotonic() + limit_s
    while (busy := busy_percent(1.0)) > threshold:
        if time.monotonic() > deadline:
            log(f"the CPUs are still {busy:.0f}% busy after {limit_s:.0f} s; running anyway")
            return
        log(f"waiting for the machine to be idle ({busy:.0f}% busy)")
        time.sleep(4.0)


def run_scenario(
    name: str, options: Options, runs: int, idle_wait_s: float = 0.0
) -> ScenarioResults:
    scenario = SCENARIOS[name]
    results = ScenarioResults(scenario)
    reason = scenario.skip_reason(options)
    if reason is not None:
        log(f"{name}: skipped: {reason}")
        results.skipped = reason
        return results
    runs = min(runs, scenario.max_runs or runs)
    for i in range(1, runs + 1):
        if idle_wait_s > 0:
            wait_idle(idle_wait_s)
        log(f"{name}: run {i}/{runs} ...")
        started = time.monotonic()
        result = one_run(scenario, options)
        if isinstance(result, str):
            log(f"{name}: run {i} FAILED: {result}")
            results.errors.append(result)
            continue
        shown = ", ".join(f"{k} {v:,.2f}" for k, v in result.metrics.items())
        shown += f"; other processes' CPU {result.info['other_cpu_percent']:.0f}%"
        log(f"{name}: run {i} done in {time.monotonic() - started:.1f} s: {shown}")
        results.runs.append(result)
    return results


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    options = options_from(args)
    signal.signal(signal.SIGTERM, _interrupt)  # stop like Ctrl-C: servers and wrk are stopped
    machine = describe(options.python)
    busy = busy_percent()
    machine["busy_before_percent"] = round(busy, 1)
    if busy > 15:
        log(
            f"warning: the CPUs are already {busy:.0f}% busy before the benchmark starts; "
            "other processes will lower the figures"
        )
    log(
        f"{machine['nproc']} CPUs ({machine['cpu_model']}), {machine['memory_gib']} GiB, "
        f"Python {machine['python']}; {args.runs} run(s) per scenario"
    )
    results: list[ScenarioResults] = []
    try:
        for name in args.scenarios:
            results.append(run_scenario(name, options, args.runs, args.wait_idle))
    except KeyboardInterrupt:
        log("interrupted; every server and wrk started has been stopped")
        return 130
    title = (
        f"asyncfn benchmarks: medians of {args.runs} run(s); {machine['nproc']} x "
        f"{machine['cpu_model']}, Python {machine['python']}"
    )
    report.print_table(results, title)
    if args.markdown:
        args.markdown.write_text(report.markdown(results, title))
    if args.json:
        opts = asdict(options) | {"runs": args.runs, "scenarios": args.scenarios}
        report.write_json(args.json, report.to_json(results, machine, opts))
        log(f"raw results written to {args.json}")
    return (
        1
        if any(r.errors or (r.skipped and r.scenario.name not in SKIP_IS_FINE) for r in results)
        else 0
    )


if __name__ == "__main__":
    sys.exit(main())
