"""The `nats` trigger source: a durable JetStream pull consumer on an existing stream, pulling
batches only when the sink has room and acknowledging each batch after it was committed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Literal

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from pydantic import Field

from asyncfn.engine.service import lost_cancellation
from asyncfn.engine.triggers.base import Message, Sink, SourceContext, SourceKind, SourceSettings

log = logging.getLogger(__name__)

FETCH_WAIT_S = 1.0
"""How long one pull waits for messages before the loop checks for room again."""
LAG_INTERVAL_S = 1.0
"""How often the consumer's pending count is asked for."""
NAK_DELAY_S = 1.0
"""A batch whose commit failed is redelivered after this long (not at once, to avoid a spin)."""
CONNECT_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 5.0


class NatsSourceError(RuntimeError):
    """The source cannot run as configured (its stream does not exist, ...)."""


class NatsSettings(SourceSettings):
    """Settings of a `nats` trigger. The consumer is created with `start`, `subject` and
    `ack_wait_s` when it does not exist; an existing durable consumer is bound as it is."""

    servers: list[str] = Field(default_factory=lambda: ["nats://127.0.0.1:4222"], min_length=1)
    stream: str = Field(min_length=1)
    """The JetStream stream to consume; it must exist."""
    subject: str | None = Field(default=None, min_length=1)
    """Only messages of this subject (wildcards allowed); None: the whole stream."""
    durable: str | None = Field(default=None, min_length=1)
    """The durable consumer's name; None: `asyncfn-<trigger>`."""
    start: Literal["all", "new"] = "all"
    """Where a newly created consumer starts: the stream's first message or the next one."""
    batch: int = Field(default=100, ge=1, le=1000)
    ack_wait_s: float = Field(default=30.0, gt=0, le=3600)
    """A delivered but unacknowledged message is redelivered after this long."""


class NatsSource:
    """One running consumer of a `nats` trigger; message ids are `<stream>:<stream sequence>`."""

    def __init__(self, settings: NatsSettings, context: SourceContext) -> None:
        self.settings = settings
        self.context = context
        self.durable = settings.durable or f"asyncfn-{context.trigger}"

    async def run(self, sink: Sink) -> None:
        nc = Client()
        lag_task: asyncio.Task[None] | None = None
        try:
            await self._connect(nc)
            js = nc.jetstream()
            sub = await self._subscribe(js)
            lag_task = asyncio.get_running_loop().create_task(self._report_lag(sub, sink))
            await self._consume(sub, sink)
        finally:
            if lag_task is not None:
                lag_task.cancel()
                await asyncio.gather(lag_task, return_exceptions=True)
            await self._close(nc)

    async def _connect(self, nc: Client) -> None:
        """Connect, or raise NatsSourceError (the client would retry a first connect for
        minutes; a restart after the runner's backoff does the same, visibly)."""
        try:
            await asyncio.wait_for(
                nc.connect(
                    servers=self.settings.servers,
                    name=f"asyncfn-{self.context.trigger}-{self.context.node}",
                    error_cb=self._on_error,
                ),
                CONNECT_TIMEOUT_S,
            )
        except (TimeoutError, nats.errors.NoServersError) as exc:
            servers = ", ".join(self.settings.servers)
            raise NatsSourceError(
                f"cannot connect to NATS at {servers}: {nc.last_error or exc}"
            ) from exc

    async def _subscribe(self, js: JetStreamContext) -> JetStreamContext.PullSubscription:
        """Bind the durable consumer, creating it first when it does not exist."""
        stream = self.settings.stream
        try:
            await js.stream_info(stream)
        except nats.js.errors.NotFoundError as exc:
            raise NatsSourceError(f"NATS JetStream stream {stream!r} does not exist") from exc
        try:
            await js.consumer_info(stream, self.durable)
        except nats.js.errors.NotFoundError:
            config = ConsumerConfig(
                name=self.durable,
                durable_name=self.durable,
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL
                if self.settings.start == "all"
                else DeliverPolicy.NEW,
                filter_subject=self.settings.subject,
                ack_wait=self.settings.ack_wait_s,
                max_ack_pending=max(1000, 2 * self.settings.batch),
            )
            # Another node may create it at the same moment: the same config is accepted.
            await js.add_consumer(stream, config=config)
        return await js.pull_subscribe_bind(durable=self.durable, stream=stream)

    async def _consume(self, sub: JetStreamContext.PullSubscription, sink: Sink) -> None:
        stream = self.settings.stream
        while True:
            await sink.room()
            try:
                msgs = await sub.fetch(self.settings.batch, timeout=FETCH_WAIT_S)
            except TimeoutError:
                lost_cancellation()
                continue  # nothing there (or a reconnect in progress): look again
            lost_cancellation()  # nats-py's fetch waits with asyncio.wait_for; unacked, redelivered
            batch = [Message(f"{stream}:{m.metadata.sequence.stream}", m.data) for m in msgs]
            try:
                await sink.commit(batch)
            except Exception:
                await self._nak(msgs)
                raise
            for m in msgs:
                await m.ack()

    @staticmethod
    async def _nak(msgs: list[Msg]) -> None:
        """Ask for a delayed redelivery of `msgs`; when that fails too, `ack_wait` does it."""
        try:
            for m in msgs:
                await m.nak(delay=NAK_DELAY_S)
        except nats.errors.Error as exc:
            log.warning("nats: could not nak a failed batch (%s); ack_wait redelivers it", exc)

    async def _report_lag(self, sub: JetStreamContext.PullSubscription, sink: Sink) -> None:
        """Report the consumer's pending count once a second (None while it cannot be had)."""
        while True:
            pending: int | None
            try:
                info = await sub.consumer_info()
                pending = info.num_pending
            except (nats.errors.Error, TimeoutError) as exc:
                log.debug("nats: consumer info failed: %s", exc)
                pending = None
            sink.report_lag(pending)
            await asyncio.sleep(LAG_INTERVAL_S)

    async def _on_error(self, exc: Exception) -> None:
        log.warning("nats trigger %s: %s", self.context.trigger, exc or type(exc).__name__)

    @staticmethod
    async def _close(nc: Client) -> None:
        with contextlib.suppress(TimeoutError, nats.errors.Error):
            await asyncio.wait_for(nc.close(), CLOSE_TIMEOUT_S)


KIND = SourceKind("nats", NatsSettings, NatsSource)
