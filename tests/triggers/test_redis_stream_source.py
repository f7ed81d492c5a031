"""The redis-stream source against a real Redis on 127.0.0.1:6379: every entry committed once,
acknowledged only after commit, a crashed or dead consumer's entries redelivered."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from asyncfn.domain.errors import InvalidInput
from asyncfn.engine.triggers.base import SourceContext, parse_settings
from asyncfn.engine.triggers.redis_stream import (
    KIND,
    RedisStreamSettings,
    RedisStreamSource,
    entry_payload,
)
from tests.triggers.conftest import RecordingSink, SinkCrash, run_source

URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(URL)
    try:
        await client.ping()  # Redis down: the test errors, it is not skipped
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def stream(redis: Redis) -> AsyncIterator[str]:
    key = f"asyncfn-test-{uuid.uuid4().hex}"
    try:
        yield key
    finally:
        await redis.delete(key)


def make(stream: str, node: str = "node-1", **settings: object) -> RedisStreamSource:
    parsed = parse_settings(KIND.settings, {"url": URL, "stream": stream, **settings})
    assert isinstance(parsed, RedisStreamSettings)
    return RedisStreamSource(parsed, SourceContext("orders", "default", "handle", node))


async def add(redis: Redis, stream: str, count: int, start: int = 0) -> list[str]:
    """Adds `count` entries {"n": i, "kind": "order"}; returns their message ids in order."""
    async with redis.pipeline(transaction=False) as pipe:
        for n in range(start, start + count):
            pipe.xadd(stream, {"n": str(n), "kind": "order"})
        ids = await pipe.execute()
    return [f"{stream}:{entry_id.decode()}" for entry_id in ids]


def text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


async def pending(redis: Redis, stream: str, group: str = "asyncfn-orders") -> int:
    summary = await redis.xpending(stream, group)
    return int(summary["pending"])


async def test_every_entry_committed_once_in_batches(redis: Redis, stream: str) -> None:
    ids = await add(redis, stream, 500)
    sink = RecordingSink()
    async with run_source(make(stream), sink) as task:
        await sink.wait_for(500)
        assert not task.done()
    assert sorted(sink.committed) == sorted(ids)
    assert set(sink.seen.values()) == {1}
    assert max(sink.batches) > 1
    assert all(size <= 100 for size in sink.batches)
    first = json.loads(sink.committed[ids[0]])
    assert first == {"n": "0", "kind": "order"}
    assert json.loads(sink.committed[ids[499]])["n"] == "499"
    assert await pending(redis, stream) == 0


async def test_new_entries_arrive_while_running(redis: Redis, stream: str) -> None:
    sink = RecordingSink()
    async with run_source(make(stream, start="new", block_ms=200), sink):
        await sink.wait_until(lambda: len(sink.lags) > 0)
        ids = await add(redis, stream, 30)
        await sink.wait_for(30)
    assert sorted(sink.committed) == sorted(ids)


async def test_start_new_skips_existing_entries(redis: Redis, stream: str) -> None:
    await add(redis, stream, 5)
    sink = RecordingSink()
    async with run_source(make(stream, start="new", block_ms=100), sink):
        await sink.wait_until(lambda: len(sink.lags) > 0)
        ids = await add(redis, stream, 3, start=5)
        await sink.wait_for(3)
        await asyncio.sleep(0.2)
    assert sorted(sink.committed) == sorted(ids)


async def test_field_payload_and_fallback(redis: Redis, stream: str) -> None:
    with_field = await redis.xadd(stream, {"body": b"\x00raw\xff", "other": "x"})
    without = await redis.xadd(stream, {"other": b"caf\xc3\xa9 \xff"})
    sink = RecordingSink()
    async with run_source(make(stream, field="body"), sink):
        await sink.wait_for(2)
    assert sink.committed[f"{stream}:{text(with_field)}"] == b"\x00raw\xff"
    fallback = json.loads(sink.committed[f"{stream}:{text(without)}"])
    assert fallback == {"other": "café \ufffd"}


def test_entry_payload_defaults_to_json_of_all_fields() -> None:
    assert json.loads(entry_payload({b"a": b"1", b"b": b"2"}, None)) == {"a": "1", "b": "2"}
    assert entry_payload({b"a": b"1"}, "a") == b"1"


async def test_crash_after_commit_is_redelivered_on_restart(redis: Redis, stream: str) -> None:
    ids = await add(redis, stream, 250)
    sink = RecordingSink(crash_after_commit=1)
    async with run_source(make(stream, batch=50), sink) as task:
        await sink.wait_until(task.done)
    assert isinstance(task.exception(), SinkCrash)
    assert len(sink.committed) == 50
    assert await pending(redis, stream) == 50  # committed but never acknowledged

    async with run_source(make(stream, batch=50), sink) as task:
        await sink.wait_for(250)
        await sink.wait_until(lambda: sum(sink.seen.values()) == 300)
        assert not task.done()
    assert sorted(sink.committed) == sorted(ids)
    assert sorted(sink.seen.values()).count(2) == 50  # the first batch, committed twice
    assert sink.duplicates == 50
    assert await pending(redis, stream) == 0


async def test_dead_consumers_entries_are_claimed(redis: Redis, stream: str) -> None:
    ids = await add(redis, stream, 120)
    sink = RecordingSink(crash_after_commit=1)
    async with run_source(make(stream, "node-a", batch=40), sink) as task:
        await sink.wait_until(task.done)
    assert isinstance(task.exception(), SinkCrash)
    consumers = {
        c["name"]: c["pending"] for c in await redis.xinfo_consumers(stream, "asyncfn-orders")
    }
    assert consumers == {b"node-a": 40}

    source_b = make(stream, "node-b", batch=40, claim_idle_ms=200, block_ms=100)
    async with run_source(source_b, sink) as task:
        await sink.wait_for(120)
        await sink.wait_until(lambda: sink.duplicates == 40)
        assert not task.done()
    assert sorted(sink.committed) == sorted(ids)
    assert max(sink.seen.values()) == 2
    assert await pending(redis, stream) == 0


async def test_back_pressure_pulls_nothing_while_full(redis: Redis, stream: str) -> None:
    ids = await add(redis, stream, 20)
    sink = RecordingSink(full=True)
    async with run_source(make(stream), sink):
        await asyncio.sleep(0.3)
        assert sink.committed == {}
        assert sink.room_waits >= 1
        info = await redis.xinfo_groups(stream)
        assert info == [] or info[0]["pending"] == 0  # nothing was even read
        sink.full = False
        await sink.wait_for(20)
    assert sorted(sink.committed) == sorted(ids)


async def test_lag_reported(redis: Redis, stream: str) -> None:
    await add(redis, stream, 300)
    sink = RecordingSink()
    async with run_source(make(stream, block_ms=100), sink):
        await sink.wait_for(300)
        await sink.wait_until(lambda: len(sink.lags) >= 2, within_s=5)
    assert sink.lags[0] == 300
    assert sink.lags[-1] == 0


async def test_group_name_and_existing_group(redis: Redis, stream: str) -> None:
    await redis.xgroup_create(stream, "mine", id="0", mkstream=True)
    ids = await add(redis, stream, 3)
    sink = RecordingSink()
    async with run_source(make(stream, group="mine"), sink):
        await sink.wait_for(3)
    assert sorted(sink.committed) == sorted(ids)
    assert [g["name"] for g in await redis.xinfo_groups(stream)] == [b"mine"]


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({}, "settings.stream"),
        ({"stream": "s", "start": "middle"}, "settings.start"),
        ({"stream": "s", "batch": 0}, "settings.batch"),
        ({"stream": "s", "batch": 1001}, "settings.batch"),
        ({"stream": "s", "block_ms": 60_001}, "settings.block_ms"),
        ({"stream": "s", "claim_idle_ms": 99}, "settings.claim_idle_ms"),
        ({"stream": "s", "colour": "red"}, "settings.colour"),
    ],
)
def test_settings_validation(raw: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_settings(KIND.settings, raw)
    assert caught.value.field == field


def test_settings_defaults() -> None:
    settings = parse_settings(KIND.settings, {"stream": "s"})
    assert settings == RedisStreamSettings(stream="s")
    assert KIND.name == "redis-stream"
