"""Concurrency-key fairness: nine cold keys trickling into a keyed function, alone and then
while one hot key floods it, on a node of a handful of instances; the cold tasks' submit→start
wait (p50, p99) in each phase, medians of several runs on fresh servers.

    python -m bench.keys [--runs 3] [--hot 5000] [--python .venv/bin/python]

The function: `max_instances` 4, `instance_concurrency` 1, a handler that sleeps 20 ms, and
`concurrency` [{"key": "/c", "limit": 2}]: the hot key can hold at most 2 of the 4 instances,
and claims take turns across the waiting keys, so a cold task never waits behind the flood.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import dataclass

import httpx

from bench import db
from bench.scenarios import ScenarioError, wait_until
from bench.server import REPO, BenchServer, code_zip
from bench.stats import median, percentile

FUNCTION = "keyed"
MAX_INSTANCES = 4
KEY_LIMIT = 2
SLEEP_S = 0.020
COLD_KEYS = 9
COLD_ROUNDS = 20
WARMUP_ROUNDS = 5
"""Rounds run first and left out, so neither phase measures instances starting."""
COLD_INTERVAL_S = 0.3
"""Each cold key submits one task every COLD_INTERVAL_S (the nine keys staggered)."""
BATCH = 1_000
SOURCE = (
    "import json, time\n\n\ndef handler(event, context):\n    time.sleep(json.loads(event)['s'])\n"
)


@dataclass(frozen=True, slots=True)
class Waits:
    """The cold tasks' submit→start waits of one phase, in ms."""

    p50: float
    p99: float


async def deploy(client: httpx.AsyncClient, name: str = FUNCTION, keyed: bool = True) -> None:
    body: dict[str, object] = {
        "runtime": "python",
        "handler": "main:handler",
        "min_instances": MAX_INSTANCES,
        "max_instances": MAX_INSTANCES,
        "instance_concurrency": 1,
        "timeout_s": 60,
    }
    if keyed:
        body["concurrency"] = [{"key": "/c", "limit": KEY_LIMIT}]
    resp = await client.put(f"/v1/functions/{name}", json=body)
    if resp.status_code not in (200, 201):
        raise ScenarioError(f"PUT function answered {resp.status_code}: {resp.text}")
    resp = await client.put(
        f"/v1/functions/{name}/code",
        content=code_zip(SOURCE),
        headers={"Content-Type": "application/zip"},
    )
    if resp.status_code != 200:
        raise ScenarioError(f"PUT code answered {resp.status_code}: {resp.text}")


async def trickle(
    client: httpx.AsyncClient, rounds: int = COLD_ROUNDS, name: str = FUNCTION
) -> list[str]:
    """`rounds` rounds of one task per cold key, spread evenly over each round."""
    ids: list[str] = []
    loop = asyncio.get_running_loop()
    start = loop.time()
    step = COLD_INTERVAL_S / COLD_KEYS
    for n in range(rounds * COLD_KEYS):
        body = json.dumps({"c": f"cold-{n % COLD_KEYS}", "s": SLEEP_S})
        resp = await client.post(f"/v1/functions/{name}/invocations", content=body)
        if resp.status_code != 202:
            raise ScenarioError(f"invocation answered {resp.status_code}: {resp.text}")
        ids.append(str(resp.json()["task_id"]))
        delay = start + (n + 1) * step - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
    return ids


async def flood(client: httpx.AsyncClient, count: int, name: str = FUNCTION) -> None:
    items = [{"payload": {"c": "hot", "s": SLEEP_S}}] * min(BATCH, count)
    for _ in range(max(1, count // BATCH)):
        resp = await client.post(f"/v1/functions/{name}/invocations:batch", json=items)
        if resp.status_code != 202:
            raise ScenarioError(f"batch answered {resp.status_code}: {resp.text}")


async def waits_of(server: BenchServer, ids: list[str]) -> Waits:
    """Once the tasks `ids` have started, their submit→start waits."""
    with db.connect(server.db_path) as conn:

        def started() -> tuple[int, dict[str, int]]:
            times = db.task_times(conn, ids)
            n = sum(1 for t in times if t.started_at is not None)
            return n, {"started": n}

        await wait_until(started, len(ids), stall_s=60.0, poll_s=0.2)
        waits = [
            1000 * max(0.0, (t.started_at or 0.0) - max(t.created_at, t.run_at))
            for t in db.task_times(conn, ids)
        ]
    return Waits(percentile(waits, 50), percentile(waits, 99))


async def one_run(server: BenchServer, hot: int) -> tuple[Waits, Waits, int]:
    """Solo, then under the flood; and how many hot tasks still waited when the cold ones had
    all started (the flood was still deep)."""
    async with httpx.AsyncClient(base_url=server.base_url, timeout=120.0) as client:
        await deploy(client)
        await waits_of(server, await trickle(client, WARMUP_ROUNDS))  # instances started
        solo = await waits_of(server, await trickle(client))
        await flood(client, hot)
        flooded = await waits_of(server, await trickle(client))
        stats = (await client.get(f"/v1/functions/{FUNCTION}/stats")).json()
    return solo, flooded, int(stats.get("queued") or 0)


async def baseline_run(server: BenchServer, hot: int) -> Waits:
    """The same flood and trickle into a function without concurrency keys (one FIFO queue)."""
    async with httpx.AsyncClient(base_url=server.base_url, timeout=120.0) as client:
        await deploy(client, "unkeyed", keyed=False)
        await waits_of(server, await trickle(client, WARMUP_ROUNDS, "unkeyed"))
        await flood(client, hot, "unkeyed")
        return await waits_of(server, await trickle(client, COLD_ROUNDS, "unkeyed"))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.keys", description=__doc__)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--hot", type=int, default=5_000, help="hot tasks queued (a multiple of 1000)")
    p.add_argument("--python", default=str(REPO / ".venv" / "bin" / "python"))
    p.add_argument(
        "--baseline", action="store_true", help="also once without keys (the flood drains first)"
    )
    args = p.parse_args(argv)
    results: list[tuple[Waits, Waits, int]] = []
    for run in range(args.runs):
        with BenchServer(python=args.python) as server:
            results.append(asyncio.run(one_run(server, args.hot)))
        solo, flooded, queued = results[-1]
        print(
            f"run {run + 1}: solo p50/p99 {solo.p50:.1f}/{solo.p99:.1f} ms, with the flood "
            f"{flooded.p50:.1f}/{flooded.p99:.1f} ms ({queued} hot tasks still queued)",
            file=sys.stderr,
        )
    solo_p50 = median([r[0].p50 for r in results])
    solo_p99 = median([r[0].p99 for r in results])
    hot_p50 = median([r[1].p50 for r in results])
    hot_p99 = median([r[1].p99 for r in results])
    left = median([float(r[2]) for r in results])
    print(f"cold keys' submit→start wait, medians of {args.runs} runs ({time.strftime('%F')})")
    print("| phase | p50 ms | p99 ms |")
    print("|---|---:|---:|")
    print(f"| {COLD_KEYS} cold keys alone | {solo_p50:.1f} | {solo_p99:.1f} |")
    print(f"| with 1 hot key, {args.hot:,} queued | {hot_p50:.1f} | {hot_p99:.1f} |")
    if args.baseline:
        with BenchServer(python=args.python) as server:
            fifo = asyncio.run(baseline_run(server, args.hot))
        label = f"with 1 hot key, {args.hot:,} queued, no keys (1 run)"
        print(f"| {label} | {fifo.p50:.1f} | {fifo.p99:.1f} |")
    print(f"p99 with the flood / p99 alone: {hot_p99 / solo_p99:.2f}x")
    print(f"hot tasks still queued when the cold ones had started: {left:,.0f}")


if __name__ == "__main__":
    main()
