"""Scenario `triggers`: how fast each trigger type turns waiting messages (or files) into
committed tasks. The messages are published before the trigger exists; the clock runs from the
trigger's creation until its `created` count reaches them all. The function's queue is paused,
so only the source → commit → acknowledge path is measured, not the runs."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import nats
import redis

from bench.scenarios import Metric, Options, RunResult, Scenario, ScenarioError
from bench.server import FUNCTION, BenchServer

NATS_URL = "nats://127.0.0.1:4222"
REDIS_URL = "redis://127.0.0.1:6379/0"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"

Prepared = tuple[dict[str, Any], Callable[[], None]]
"""A trigger's settings for what was published, and how to clean it up."""


def _redis(name: str, count: int, _: Path) -> Prepared:
    conn = redis.Redis.from_url(REDIS_URL)
    for start in range(0, count, 5_000):
        pipe = conn.pipeline(transaction=False)
        for n in range(start, min(count, start + 5_000)):
            pipe.xadd(name, {"n": str(n)})
        pipe.execute()

    def cleanup() -> None:
        conn.delete(name)
        conn.close()

    return {"stream": name, "batch": 500, "block_ms": 100}, cleanup


def _nats(name: str, count: int, _: Path) -> Prepared:
    async def publish() -> None:
        nc = await nats.connect(NATS_URL)
        js = nc.jetstream()
        await js.add_stream(name=name, subjects=[f"{name}.>"])
        for start in range(0, count, 1_000):
            acks = [
                js.publish(f"{name}.job", str(n).encode())
                for n in range(start, min(count, start + 1_000))
            ]
            await asyncio.gather(*acks)
        await nc.close()

    async def remove() -> None:
        nc = await nats.connect(NATS_URL)
        await nc.jetstream().delete_stream(name)
        await nc.close()

    asyncio.run(publish())
    return {"stream": name, "batch": 500}, lambda: asyncio.run(remove())


def _amqp(name: str, count: int, _: Path) -> Prepared:
    async def publish() -> None:
        conn = await aio_pika.connect(AMQP_URL)
        async with conn:
            channel = await conn.channel()
            await channel.declare_queue(name, durable=True)
            for n in range(count):
                message = aio_pika.Message(
                    str(n).encode(),
                    message_id=f"m{n}",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                )
                await channel.default_exchange.publish(message, routing_key=name)

    async def remove() -> None:
        conn = await aio_pika.connect(AMQP_URL)
        async with conn:
            channel = await conn.channel()
            await channel.queue_delete(name)

    asyncio.run(publish())
    return {"queue": name, "prefetch": 500}, lambda: asyncio.run(remove())


def _directory(name: str, count: int, scratch: Path) -> Prepared:
    inbox = scratch / name
    inbox.mkdir(parents=True)
    for n in range(count):
        (inbox / f"file-{n:06d}.json").write_text(f'{{"n": {n}}}')
    return {"path": str(inbox), "settle_ms": 0}, lambda: None


SOURCES: dict[str, tuple[Callable[[str, int, Path], Prepared], int]] = {
    "nats": (_nats, 20_000),
    "redis-stream": (_redis, 20_000),
    "amqp": (_amqp, 10_000),
    "directory": (_directory, 5_000),
}


class Triggers(Scenario):
    name = "triggers"
    note = (
        "messages published (files written) before the trigger exists; from PUT /v1/triggers "
        "until every one is a committed task (the trigger's `created` count); the function's "
        "queue is paused so tasks are not run; "
        + ", ".join(f"{kind} {count:,}" for kind, (_, count) in SOURCES.items())
    )
    metrics = tuple(Metric(f"{kind} to tasks", "msg/s") for kind in SOURCES)

    def run(self, server: BenchServer, options: Options) -> RunResult:
        scratch = server.data_dir.parent / "inboxes"
        figures: dict[str, float] = {}
        with httpx.Client(base_url=server.base_url, timeout=30.0) as client:
            paused = client.post(f"/v1/functions/{FUNCTION}:suspend")
            if paused.status_code != 200:
                raise ScenarioError(f"pausing answered {paused.status_code}: {paused.text}")
            for kind, (prepare, count) in SOURCES.items():
                count = max(1, int(count * options.trigger_scale))
                name = f"bench{uuid.uuid4().hex[:8]}"
                settings, cleanup = prepare(name, count, scratch)
                try:
                    seconds = self._measure(client, kind, name, settings, count)
                finally:
                    cleanup()
                figures[f"{kind} to tasks"] = count / seconds
        server.check_alive()
        return RunResult(figures)

    @staticmethod
    def _measure(
        client: httpx.Client, kind: str, name: str, settings: dict[str, Any], count: int
    ) -> float:
        body = {
            "function": FUNCTION,
            "type": kind,
            "max_queue_depth": 10_000_000,
            **settings,
        }
        started = time.monotonic()
        resp = client.put(f"/v1/triggers/{name}", json=body)
        if resp.status_code != 201:
            raise ScenarioError(f"PUT trigger answered {resp.status_code}: {resp.text}")
        deadline = started + 300
        while True:
            status = client.get(f"/v1/triggers/{name}").json()["status"]
            if status["created"] >= count:
                seconds = time.monotonic() - started
                break
            if time.monotonic() > deadline:
                raise ScenarioError(f"{kind}: {status['created']} of {count} after 300 s")
            time.sleep(0.01)
        client.delete(f"/v1/triggers/{name}")
        if status["created"] != count or status["duplicates"] != 0:
            raise ScenarioError(f"{kind}: created {status['created']} of {count}: {status}")
        return seconds


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (Triggers(),)}
