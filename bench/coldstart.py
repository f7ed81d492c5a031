"""Scenario `coldstart`: how long an instance takes from `start()` to its ready frame, spawned
(interpreter start and imports) and forked from the function's fork server; in this process,
on the runtime directly (the scenario's server is not used)."""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from asyncfn.domain.models import FunctionSpec
from asyncfn.runtime.forkserver import ForkServer
from asyncfn.runtime.instance import Instance
from bench.scenarios import Metric, Options, RunResult, Scenario, ScenarioError
from bench.server import BenchServer
from bench.stats import percentile

INSTANCES = 100
HANDLER_SOURCE = "def handler(event, context):\n    return None\n"


class _Quiet:
    def on_started(self, row: int, attempt: int, instance_id: str, at: float) -> None:
        pass

    def on_log(self, row: int, attempt: int, stream: str, line: str, at: float) -> None:
        pass

    def on_progress(self, row: int, attempt: int, fraction: float, message: str | None) -> None:
        pass

    def on_checkpoint(self, row: int, attempt: int, checkpoint: Any) -> None:
        pass


async def _cold_start(
    spec: FunctionSpec, code: Path, forker: ForkServer | None
) -> tuple[float, float]:
    """One instance started and closed: its cold start and how long `start()` held the loop (ms)."""
    instance = Instance(spec, _Quiet(), cwd=code, code_dir=code, base_env=os.environ, forker=forker)
    began = time.perf_counter()
    instance.start()
    held_ms = (time.perf_counter() - began) * 1000.0
    try:
        if not await instance.wait_ready() or instance.cold_start_ms is None:
            raise ScenarioError(f"an instance did not start ({instance})")
        if forker is not None and not instance.forked:
            raise ScenarioError(f"the fork server failed: {forker.failure}")
        return instance.cold_start_ms, held_ms
    finally:
        await instance.close()


async def measure_cold_starts(n: int) -> dict[str, float]:
    """Start `n` instances one after the other spawned, then `n` forked; p50 and p99 (ms) of
    their cold starts, and of the time `start()` blocked the event loop."""
    with tempfile.TemporaryDirectory(prefix="asyncfn-coldstart-") as tmp:
        code = Path(tmp)
        (code / "handler.py").write_text(HANDLER_SOURCE)
        spec = FunctionSpec(name="coldstart", handler="handler:handler")
        server = ForkServer(spec, cwd=code, code_dir=code, base_env=os.environ)
        await server.start()
        if not server.alive:
            raise ScenarioError(f"the fork server did not start: {server.failure}")
        try:
            spawned = [await _cold_start(spec, code, None) for _ in range(n)]
            forked = [await _cold_start(spec, code, server) for _ in range(n)]
        finally:
            await server.stop()
    figures: dict[str, float] = {}
    for name, samples in (("spawn", spawned), ("fork", forked)):
        cold = [cold_ms for cold_ms, _ in samples]
        held = [held_ms for _, held_ms in samples]
        figures[f"{name} p50"] = percentile(cold, 50)
        figures[f"{name} p99"] = percentile(cold, 99)
        figures[f"{name} start() p99"] = percentile(held, 99)
    return figures


class ColdStart(Scenario):
    name = "coldstart"
    note = (
        f"{INSTANCES} instances of a no-op python function started one after the other, spawned "
        "(python -m launch) then forked from its fork server: start() to the ready frame; "
        "start() p99 is how long starting one blocks the event loop"
    )
    metrics = (
        Metric("spawn p50", "ms", higher_is_better=False),
        Metric("spawn p99", "ms", higher_is_better=False),
        Metric("spawn start() p99", "ms", higher_is_better=False),
        Metric("fork p50", "ms", 10.0, higher_is_better=False),
        Metric("fork p99", "ms", higher_is_better=False),
        Metric("fork start() p99", "ms", higher_is_better=False),
    )

    def run(self, server: BenchServer, options: Options) -> RunResult:
        return RunResult(asyncio.run(measure_cold_starts(INSTANCES)))


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (ColdStart(),)}
