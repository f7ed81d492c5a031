"""The `amqp` source against a real RabbitMQ on 127.0.0.1:5672 (guest/guest): every message
committed once, redelivery after a crash between commit and ack, back-pressure, settings, lag."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, cast

import aio_pika
import pytest
from aio_pika import IncomingMessage
from aio_pika.abc import AbstractChannel
from aiormq import spec
from aiormq.abc import DeliveredMessage
from pamqp.header import ContentHeader

from asyncfn.domain.errors import InvalidInput
from asyncfn.engine.triggers.amqp import (
    KIND,
    AmqpSettings,
    AmqpSource,
    AmqpSourceError,
    message_id,
)
from asyncfn.engine.triggers.base import SourceContext, parse_settings
from tests.triggers.conftest import RecordingSink, SinkCrash, run_source

URL = "amqp://guest:guest@127.0.0.1:5672/"


@dataclass
class Queue:
    channel: AbstractChannel
    name: str

    async def publish(self, count: int, start: int = 0, with_id: bool = True) -> None:
        for i in range(start, start + count):
            message = aio_pika.Message(
                f"m-{i}".encode(), message_id=f"msg-{i}" if with_id else None
            )
            await self.channel.default_exchange.publish(message, routing_key=self.name)

    def source(self, **settings: object) -> AmqpSource:
        parsed = parse_settings(KIND.settings, {"url": URL, "queue": self.name, **settings})
        assert isinstance(parsed, AmqpSettings)
        return AmqpSource(parsed, SourceContext("trg", "default", "fn", "node-1"))

    async def counts(self) -> tuple[int, int]:
        """(ready messages, consumers) of the queue."""
        queue = await self.channel.declare_queue(self.name, passive=True)
        result = queue.declaration_result
        return result.message_count or 0, result.consumer_count or 0


@pytest.fixture
async def channel() -> AsyncIterator[AbstractChannel]:
    connection = await aio_pika.connect(URL, timeout=5)
    try:
        yield await connection.channel()
    finally:
        await connection.close()


@pytest.fixture
async def queue(channel: AbstractChannel) -> AsyncIterator[Queue]:
    name = f"asyncfn-test-{uuid.uuid4().hex}"
    await channel.declare_queue(name, durable=True)
    try:
        yield Queue(channel, name)
    finally:
        await channel.queue_delete(name)


def expected(count: int) -> dict[str, bytes]:
    return {f"msg-{i}": f"m-{i}".encode() for i in range(count)}


async def test_every_message_is_committed_once_in_batches(queue: Queue) -> None:
    await queue.publish(500)
    sink = RecordingSink()
    async with run_source(queue.source(prefetch=100), sink) as task:
        await sink.wait_for(500)
        await asyncio.sleep(0.1)
        assert not task.done()
        assert await queue.counts() == (0, 1)
    assert sink.committed == expected(500)
    assert sink.duplicates == 0
    assert max(sink.batches) > 1
    assert all(size <= 100 for size in sink.batches)
    await asyncio.sleep(0.1)
    assert await queue.counts() == (0, 0), "everything was acknowledged"


def delivered(body: bytes, message_id: str | None) -> IncomingMessage:
    properties = spec.Basic.Properties(message_id=message_id)
    deliver = spec.Basic.Deliver(consumer_tag="c", delivery_tag=1, routing_key="q")
    raw = DeliveredMessage(deliver, ContentHeader(properties=properties), body, cast(Any, None))
    return IncomingMessage(raw, no_ack=True)


def test_the_message_id_property_is_the_id_else_the_body_digest() -> None:
    # (aio-pika publishers always set a random message_id; other clients may set none)
    assert message_id(delivered(b"m-1", "order-7")) == "order-7"
    digest = hashlib.sha256(b"m-1").hexdigest()
    assert message_id(delivered(b"m-1", None)) == f"sha256:{digest}"
    assert message_id(delivered(b"m-1", "")) == f"sha256:{digest}"


async def test_crash_between_commit_and_ack_redelivers_without_loss(queue: Queue) -> None:
    await queue.publish(200)
    sink = RecordingSink(crash_after_commit=1)
    async with run_source(queue.source(prefetch=50), sink) as task:
        await sink.wait_until(task.done)
        assert isinstance(task.exception(), SinkCrash)
    first = list(sink.committed)
    assert len(first) == sink.batches[0] > 1

    # A new source on a new connection, as after a node restart.
    async with run_source(queue.source(prefetch=50), sink) as task:
        await sink.wait_for(200)
        await sink.wait_until(lambda: sum(sink.seen.values()) == 200 + len(first))
        assert not task.done()
    assert sink.committed == expected(200)
    assert {key for key, count in sink.seen.items() if count == 2} == set(first)
    assert all(count in (1, 2) for count in sink.seen.values())
    assert sink.duplicates == len(first)
    await asyncio.sleep(0.1)
    assert await queue.counts() == (0, 0)


async def test_nothing_is_committed_while_the_sink_is_full(queue: Queue) -> None:
    await queue.publish(50)
    sink = RecordingSink(full=True)
    async with run_source(queue.source(), sink) as task:
        await asyncio.sleep(0.3)
        assert sink.committed == {}
        assert sink.room_waits > 0
        sink.full = False
        await sink.wait_for(50)
        assert not task.done()
    assert sink.committed == expected(50)
    assert sink.duplicates == 0


async def test_lag_is_reported_while_messages_wait(queue: Queue) -> None:
    await queue.publish(30)
    sink = RecordingSink(full=True)
    async with run_source(queue.source(prefetch=10), sink) as task:
        # At most `prefetch` are delivered to the source; the rest wait in the queue.
        await sink.wait_until(lambda: any(lag is not None and lag >= 20 for lag in sink.lags))
        sink.full = False
        await sink.wait_for(30)
        await sink.wait_until(lambda: sink.lags[-1] == 0, within_s=5)
        assert not task.done()


async def test_missing_queue_is_an_error_without_declare(queue: Queue) -> None:
    source = queue.source(queue=f"{queue.name}-missing", declare=False)
    with pytest.raises(AmqpSourceError, match="does not exist"):
        await asyncio.wait_for(source.run(RecordingSink()), 10)


async def test_missing_queue_is_declared_durable(queue: Queue) -> None:
    name = f"{queue.name}-declared"
    try:
        sink = RecordingSink()
        async with run_source(queue.source(queue=name), sink) as task:
            await sink.wait_until(lambda: 0 in sink.lags)
            await Queue(queue.channel, name).publish(5)
            await sink.wait_for(5)
            assert not task.done()
        assert sink.committed == expected(5)
        declared = await queue.channel.declare_queue(name, passive=True)
        assert declared.declaration_result.message_count == 0
    finally:
        await queue.channel.queue_delete(name)


async def test_unreachable_broker_is_an_error(queue: Queue) -> None:
    source = queue.source(url="amqp://guest:secret@127.0.0.1:1/")
    with pytest.raises(AmqpSourceError, match="cannot connect") as caught:
        await asyncio.wait_for(source.run(RecordingSink()), 10)
    assert "secret" not in str(caught.value)


def test_settings_defaults() -> None:
    settings = parse_settings(KIND.settings, {"queue": "orders"})
    assert settings == AmqpSettings(queue="orders")
    assert isinstance(settings, AmqpSettings)
    assert settings.url == "amqp://guest:guest@127.0.0.1:5672/"
    assert (settings.declare, settings.prefetch, settings.batch_window_ms) == (True, 100, 5)
    assert KIND.name == "amqp"


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"queue": "q", "bogus": 1}, "settings.bogus"),
        ({}, "settings.queue"),
        ({"queue": ""}, "settings.queue"),
        ({"queue": "q", "prefetch": 0}, "settings.prefetch"),
        ({"queue": "q", "prefetch": 10_001}, "settings.prefetch"),
        ({"queue": "q", "batch_window_ms": -1}, "settings.batch_window_ms"),
        ({"queue": "q", "declare": "maybe"}, "settings.declare"),
        ({"queue": "q", "url": "http://x/"}, "settings.url"),
    ],
)
def test_bad_settings_are_refused(raw: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_settings(KIND.settings, raw)
    assert caught.value.field == field
