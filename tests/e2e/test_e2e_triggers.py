"""Triggers end to end on a real node: the API's checks, files becoming tasks, and for each
broker a node SIGKILLed while it consumes (commits made, acknowledgements not yet sent): after
a restart every message is a task exactly once."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import nats
import pytest
import redis

from asyncfn.client import Client
from tests.e2e.harness import Server, deploy, free_port

pytestmark = pytest.mark.timeout(180)

COUNT = 1_500
ECHO = "def handler(event, context):\n    return event.decode()\n"


def task_ids(url: str, function: str) -> list[str]:
    with Client(url) as client:
        return [t["id"] for t in client.iter_tasks(function=function, page_size=1000)]


def wait_for_count(url: str, function: str, count: int, timeout: float = 90) -> list[str]:
    """The function's task ids once there are at least `count` of them."""
    deadline = time.monotonic() + timeout
    while True:
        ids = task_ids(url, function)
        if len(ids) >= count:
            return ids
        assert time.monotonic() < deadline, f"{len(ids)} of {count} tasks after {timeout} s"
        time.sleep(0.1)


# -- the brokers: publish COUNT messages, and the task ids they must become ---------------------


def redis_stream(name: str) -> tuple[dict[str, Any], list[str], Callable[[], None]]:
    conn = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    pipe = conn.pipeline(transaction=False)
    for n in range(COUNT):
        pipe.xadd(name, {"n": str(n)})
    entry_ids = [e.decode() for e in pipe.execute()]

    def cleanup() -> None:
        conn.delete(name)
        conn.close()

    settings = {"stream": name, "batch": 50, "block_ms": 200}
    return settings, [f"{name}:{e}" for e in entry_ids], cleanup


def nats_stream(name: str) -> tuple[dict[str, Any], list[str], Callable[[], None]]:
    async def publish() -> None:
        nc = await nats.connect("nats://127.0.0.1:4222")
        js = nc.jetstream()
        await js.add_stream(name=name, subjects=[f"{name}.>"])
        for n in range(COUNT):
            await js.publish(f"{name}.job", str(n).encode())
        await nc.close()

    async def remove() -> None:
        nc = await nats.connect("nats://127.0.0.1:4222")
        await nc.jetstream().delete_stream(name)
        await nc.close()

    asyncio.run(publish())
    settings = {"stream": name, "batch": 50, "ack_wait_s": 2}
    return settings, [f"{name}:{seq}" for seq in range(1, COUNT + 1)], lambda: asyncio.run(remove())


def amqp_queue(name: str) -> tuple[dict[str, Any], list[str], Callable[[], None]]:
    url = "amqp://guest:guest@127.0.0.1:5672/"

    async def publish() -> None:
        conn = await aio_pika.connect(url)
        async with conn:
            channel = await conn.channel()
            await channel.declare_queue(name, durable=True)
            for n in range(COUNT):
                message = aio_pika.Message(
                    str(n).encode(),
                    message_id=f"m{n}",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                )
                await channel.default_exchange.publish(message, routing_key=name)

    async def remove() -> None:
        conn = await aio_pika.connect(url)
        async with conn:
            channel = await conn.channel()
            await channel.queue_delete(name)

    asyncio.run(publish())
    settings = {"queue": name, "prefetch": 50}
    return settings, [f"m{n}" for n in range(COUNT)], lambda: asyncio.run(remove())


BROKERS = {"redis-stream": redis_stream, "nats": nats_stream, "amqp": amqp_queue}


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path / "data", free_port()).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.mark.parametrize("kind", sorted(BROKERS))
def test_node_killed_while_consuming_loses_and_duplicates_nothing(
    kind: str, tmp_path: Path
) -> None:
    name = f"e2e{uuid.uuid4().hex[:10]}"
    settings, message_ids, cleanup = BROKERS[kind](name)
    expected = {f"feed.{m}" for m in message_ids}
    data = tmp_path / "data"
    first = Server(data, free_port()).start()
    try:
        with httpx.Client(base_url=first.url, timeout=30) as http:
            deploy(http, "echo", ECHO)
            resp = http.put(
                "/v1/triggers/feed", json={"function": "echo", "type": kind, **settings}
            )
            assert resp.status_code == 201, resp.text
            wait_for_count(first.url, "echo", COUNT // 5)
        first.kill()  # mid-stream: batches committed whose acknowledgement never left
        again = Server(data, free_port()).start()
        try:
            ids = wait_for_count(again.url, "echo", COUNT)
            time.sleep(1.0)  # anything redelivered late would show up now
            ids = task_ids(again.url, "echo")
            assert len(ids) == COUNT
            assert set(ids) == expected
            with httpx.Client(base_url=again.url, timeout=30) as http:
                status = http.get("/v1/triggers/feed").json()["status"]
            assert status["phase"] in ("running", "starting"), status
        finally:
            again.stop()
    finally:
        first.stop()
        cleanup()


def test_trigger_api_checks_input_and_reports_status(node: Server, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with httpx.Client(base_url=node.url, timeout=30) as http:
        deploy(http, "echo", ECHO)
        base = {"function": "echo", "type": "directory", "path": str(inbox)}

        def refused(name: str, body: dict[str, Any]) -> dict[str, Any]:
            resp = http.put(f"/v1/triggers/{name}", json=body)
            assert resp.status_code in (404, 422), resp.text
            error: dict[str, Any] = resp.json()["error"]
            return error

        assert refused("t1", {**base, "function": "ghost"})["code"] == "function_not_found"
        assert refused("t1", {**base, "type": "kafka"})["field"] == "type"
        assert refused("t1", {**base, "pathh": "/x"})["field"] == "pathh"
        assert refused("t1", {**base, "path": str(tmp_path / "missing")})["field"] == "path"
        assert refused("t1", {**base, "max_queue_depth": 0})["field"] == "max_queue_depth"
        assert refused("1bad", base)["field"] == "name"
        assert refused("t1", {"function": "echo", "type": "nats"})["field"] == "stream"
        assert http.get("/v1/triggers").json() == {"items": []}

        created = http.put("/v1/triggers/t1", json=base)
        assert created.status_code == 201, created.text
        body = created.json()
        assert (body["name"], body["type"], body["path"]) == ("t1", "directory", str(inbox))
        assert body["status"]["phase"] in ("starting", "running")
        again = http.put("/v1/triggers/t1", json={**base, "enabled": False})
        assert again.status_code == 200 and again.json()["status"]["phase"] == "disabled"
        assert [t["name"] for t in http.get("/v1/triggers").json()["items"]] == ["t1"]
        assert http.delete("/v1/triggers/t1").status_code == 204
        missing = http.get("/v1/triggers/t1")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "trigger_not_found"


def test_directory_trigger_runs_each_file_once_and_moves_it(node: Server, tmp_path: Path) -> None:
    inbox, done = tmp_path / "inbox", tmp_path / "done"
    inbox.mkdir()
    (inbox / "early.csv").write_text("1,2,3\n")  # there before the trigger: counts too
    with httpx.Client(base_url=node.url, timeout=30) as http:
        deploy(http, "echo", ECHO)
        body = {
            "function": "echo",
            "type": "directory",
            "path": str(inbox),
            "pattern": "*.csv",
            "settle_ms": 100,
            "after": "move",
            "move_to": str(done),
        }
        assert http.put("/v1/triggers/files", json=body).status_code == 201
        (inbox / "late.csv").write_text("4,5\n")
        (inbox / "ignored.txt").write_text("not a csv\n")
        ids = wait_for_count(node.url, "echo", 2)
        with Client(node.url) as client:
            events = sorted(json.loads(client.wait(i)["result"])["name"] for i in ids)
        assert events == ["early.csv", "late.csv"]
        deadline = time.monotonic() + 10
        while sorted(p.name for p in done.iterdir()) != ["early.csv", "late.csv"]:
            assert time.monotonic() < deadline, list(done.iterdir())
            time.sleep(0.05)
        assert [p.name for p in inbox.iterdir() if p.is_file()] == ["ignored.txt"]
        status = http.get("/v1/triggers/files").json()["status"]
        assert status["created"] == 2 and status["last_error"] is None
