"""The `amqp` trigger source: consumes one RabbitMQ queue with a bounded prefetch, commits what
arrived within a short window as one batch and acknowledges the batch after the commit."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractIncomingMessage,
    AbstractQueue,
)
from aio_pika.exceptions import AMQPError, ChannelNotFoundEntity
from pydantic import Field
from yarl import URL

from asyncfn.engine.triggers.base import Message, Sink, SourceContext, SourceKind, SourceSettings

log = logging.getLogger(__name__)

LAG_INTERVAL_S = 1.0
"""How often the queue's ready-message count is asked for."""
CONNECT_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 5.0


class AmqpSourceError(RuntimeError):
    """The source cannot run as configured (broker unreachable, queue missing, channel lost)."""


class AmqpSettings(SourceSettings):
    """Settings of an `amqp` trigger.

    A message's id is its `message_id` property, else `sha256:` and the digest of its body:
    publishers should set `message_id` (aio-pika/aiormq set a random one when none is given),
    or two messages with the same body become one task.
    """

    url: str = Field(default="amqp://guest:guest@127.0.0.1:5672/", pattern=r"^amqps?://")
    queue: str = Field(min_length=1, max_length=255)
    declare: bool = True
    """Declare the queue (durable) when it does not exist; False: it must exist."""
    prefetch: int = Field(default=100, ge=1, le=10_000)
    """Most messages delivered and not yet acknowledged, and so the largest batch."""
    batch_window_ms: float = Field(default=5.0, ge=0, le=10_000)
    """How long a batch waits for more messages after its first one."""


def message_id(message: AbstractIncomingMessage) -> str:
    """The message's `message_id` when set, else `sha256:<hex digest of the body>`."""
    if message.message_id:
        return message.message_id
    return "sha256:" + hashlib.sha256(message.body).hexdigest()


class _ChannelClosed:
    """Put in the delivery buffer when the consuming channel closes."""

    def __init__(self, exc: BaseException | None) -> None:
        self.exc = exc


_Delivery = AbstractIncomingMessage | _ChannelClosed


class AmqpSource:
    """One running consumer of an `amqp` trigger."""

    def __init__(self, settings: AmqpSettings, context: SourceContext) -> None:
        self.settings = settings
        self.context = context
        self._where = str(URL(settings.url).with_user(None))
        """The broker's address without credentials, for messages."""

    async def run(self, sink: Sink) -> None:
        connection = await self._connect()
        lag_task: asyncio.Task[None] | None = None
        try:
            channel = await self._open_channel(connection)
            buffer: asyncio.Queue[_Delivery] = asyncio.Queue()
            channel.close_callbacks.add(
                lambda _channel, exc: buffer.put_nowait(_ChannelClosed(exc))
            )
            queue = await channel.declare_queue(self.settings.queue, passive=True)
            await queue.consume(buffer.put)
            lag_task = asyncio.get_running_loop().create_task(self._report_lag(channel, sink))
            await self._consume(buffer, sink)
        finally:
            if lag_task is not None:
                lag_task.cancel()
                await asyncio.gather(lag_task, return_exceptions=True)
            # Closing the connection returns every unacknowledged message to the queue.
            with contextlib.suppress(TimeoutError, AMQPError, ConnectionError):
                await asyncio.wait_for(connection.close(), CLOSE_TIMEOUT_S)

    async def _connect(self) -> AbstractConnection:
        try:
            return await aio_pika.connect(
                self.settings.url,
                timeout=CONNECT_TIMEOUT_S,
                client_properties={
                    "connection_name": f"asyncfn-{self.context.trigger}-{self.context.node}"
                },
            )
        except (AMQPError, OSError) as exc:
            raise AmqpSourceError(f"cannot connect to AMQP at {self._where}: {exc}") from exc

    async def _open_channel(self, connection: AbstractConnection) -> AbstractChannel:
        """A channel with the prefetch set, on which the queue exists (declared if allowed)."""
        name = self.settings.queue
        # A passive declare of a missing queue closes its channel: probe on a throwaway one.
        probe = await connection.channel(publisher_confirms=False)
        try:
            await probe.declare_queue(name, passive=True)
            exists = True
        except ChannelNotFoundEntity:
            exists = False
        finally:
            if not probe.is_closed:
                await probe.close()
        if not exists and not self.settings.declare:
            raise AmqpSourceError(f"AMQP queue {name!r} does not exist at {self._where}")
        channel = await connection.channel(publisher_confirms=False)
        await channel.set_qos(prefetch_count=self.settings.prefetch)
        if not exists:
            await channel.declare_queue(name, durable=True)
        return channel

    async def _consume(self, buffer: asyncio.Queue[_Delivery], sink: Sink) -> None:
        loop = asyncio.get_running_loop()
        window = self.settings.batch_window_ms / 1000
        while True:
            await sink.room()
            batch = [self._message(await buffer.get())]
            deadline = loop.time() + window
            while len(batch) < self.settings.prefetch:
                if buffer.empty():
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        async with asyncio.timeout(remaining):  # not wait_for: gh-86296
                            delivery = await buffer.get()
                    except TimeoutError:
                        break
                else:
                    delivery = buffer.get_nowait()
                batch.append(self._message(delivery))
            try:
                await sink.commit([Message(message_id(m), m.body) for m in batch])
            except Exception:
                await self._requeue(batch[-1])
                raise
            # Deliveries come in order and every earlier one was acknowledged with its batch.
            await batch[-1].ack(multiple=True)

    def _message(self, delivery: _Delivery) -> AbstractIncomingMessage:
        if isinstance(delivery, _ChannelClosed):
            raise AmqpSourceError(
                f"AMQP channel consuming {self.settings.queue!r} closed: {delivery.exc}"
            ) from delivery.exc
        return delivery

    @staticmethod
    async def _requeue(last: AbstractIncomingMessage) -> None:
        """Return the batch ending with `last` to the queue; closing the channel would too."""
        try:
            await last.nack(multiple=True, requeue=True)
        except (AMQPError, ConnectionError) as exc:
            log.warning("amqp: could not nack a failed batch (%s); it is requeued on close", exc)

    async def _report_lag(self, channel: AbstractChannel, sink: Sink) -> None:
        """Report the queue's ready messages once a second (None while it cannot be had)."""
        while True:
            pending: int | None
            try:
                queue: AbstractQueue = await channel.declare_queue(
                    self.settings.queue, passive=True
                )
                pending = queue.declaration_result.message_count
            except (AMQPError, ConnectionError) as exc:
                log.debug("amqp: queue declare failed: %s", exc)
                pending = None
            sink.report_lag(pending)
            await asyncio.sleep(LAG_INTERVAL_S)


KIND = SourceKind("amqp", AmqpSettings, AmqpSource)
