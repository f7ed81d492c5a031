"""The `redis-stream` trigger source: a Redis Streams consumer group whose entries become tasks,
acknowledged (XACK) only once committed; a dead consumer's pending entries are claimed back."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import Field
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from asyncfn.engine.triggers.base import Message, Sink, SourceContext, SourceKind, SourceSettings

if TYPE_CHECKING:
    from redis.typing import XReadGroupResponse  # redis-py 8's types; older ones lack it

LAG_EVERY_S = 1.0
"""Report the group's lag at most this often."""
CLAIM_EVERY_MIN_S = 0.05
CLAIM_EVERY_MAX_S = 15.0
"""A sweep for idle pending entries (XAUTOCLAIM) starts every `claim_idle_ms / 4`, within these."""
CURSOR_DONE = "0-0"
COMMAND_TIMEOUT_S = 30.0
"""A Redis command taking longer than this (beyond a read's own block) fails the source."""
CONNECT_TIMEOUT_S = 10.0

T = TypeVar("T")

Entry = tuple[str, Mapping[bytes, bytes] | None]
"""A stream entry: its id and its fields (None when it was deleted while pending)."""


class RedisStreamSettings(SourceSettings):
    """How to consume one stream. `field`: when set, the payload is that field's raw bytes; an
    entry without it gets the default payload (the JSON object of all its fields)."""

    url: str = "redis://127.0.0.1:6379/0"
    stream: str = Field(min_length=1)
    group: str | None = Field(default=None, min_length=1)
    start: Literal["all", "new"] = "all"
    batch: int = Field(default=100, ge=1, le=1000)
    block_ms: int = Field(default=1000, ge=1, le=60_000)
    claim_idle_ms: int = Field(default=60_000, ge=100)
    field: str | None = Field(default=None, min_length=1)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def entry_payload(fields: Mapping[bytes, bytes], field: str | None) -> bytes:
    """The task payload of an entry: `field`'s raw bytes when set and present, else the JSON
    object of all fields (names and values decoded as UTF-8, undecodable bytes as U+FFFD)."""
    if field is not None:
        raw = fields.get(field.encode("utf-8"))
        if raw is not None:
            return raw
    decoded = {_text(name): _text(value) for name, value in fields.items()}
    return json.dumps(decoded, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _entries(raw: Sequence[Any]) -> list[Entry]:
    """Entries from an XREADGROUP/XAUTOCLAIM reply, ids as text."""
    out: list[Entry] = []
    for entry_id, fields in raw:
        text_id = entry_id.decode("ascii") if isinstance(entry_id, bytes) else str(entry_id)
        out.append((text_id, fields))
    return out


def _read_entries(reply: XReadGroupResponse) -> list[Entry]:
    """The entries of an XREADGROUP reply for one stream (the client speaks RESP2)."""
    if isinstance(reply, dict):
        raise TypeError("XREADGROUP answered in RESP3; the source asks for RESP2")
    return _entries(reply[0][1]) if reply else []


class RedisStreamSource:
    """One consumer (`context.node`) in the trigger's group. Order of work: first this
    consumer's own pending entries (left by a crash), then new entries, with a periodic sweep
    claiming entries any consumer left idle longer than `claim_idle_ms`."""

    def __init__(self, settings: RedisStreamSettings, context: SourceContext) -> None:
        self._settings = settings
        self._group = settings.group or f"asyncfn-{context.trigger}"
        self._consumer = context.node
        self._claim_every = min(
            max(settings.claim_idle_ms / 4000, CLAIM_EVERY_MIN_S), CLAIM_EVERY_MAX_S
        )
        self._claim_cursor = CURSOR_DONE
        self._next_claim = 0.0
        self._next_lag = 0.0

    async def run(self, sink: Sink) -> None:
        # No socket_timeout: redis-py then wraps each send in asyncio.wait_for, which on
        # Python 3.11 can swallow a cancellation; `_call` bounds every command instead.
        client = Redis.from_url(
            self._settings.url,
            protocol=2,
            socket_timeout=None,
            socket_connect_timeout=CONNECT_TIMEOUT_S,
        )
        try:
            await self._ensure_group(client)
            await self._drain_own_pending(client, sink)
            while True:
                await sink.room()
                await self._report_lag(client, sink)
                batch = await self._claim_idle(client)
                if not batch:
                    batch = await self._read_new(client)
                await self._deliver(client, sink, batch)
        finally:
            await client.aclose()

    @staticmethod
    async def _call(command: Awaitable[T], block_ms: int = 0) -> T:
        """Await one Redis command within `COMMAND_TIMEOUT_S` (plus its block); and should a
        cancellation have been swallowed on the way (see `run`), honour it now."""
        async with asyncio.timeout(COMMAND_TIMEOUT_S + block_ms / 1000):
            result = await command
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise asyncio.CancelledError
        return result

    async def _ensure_group(self, client: Redis) -> None:
        start = "0" if self._settings.start == "all" else "$"
        try:
            await self._call(
                client.xgroup_create(self._settings.stream, self._group, id=start, mkstream=True)
            )
        except ResponseError as exc:
            if not str(exc).startswith("BUSYGROUP"):
                raise

    async def _drain_own_pending(self, client: Redis, sink: Sink) -> None:
        """Entries delivered to this consumer before and never acknowledged (a restart after a
        crash between commit and ack): they go first, in order."""
        after = "0"
        while True:
            await sink.room()
            reply = await self._call(
                client.xreadgroup(
                    self._group,
                    self._consumer,
                    {self._settings.stream: after},
                    count=self._settings.batch,
                )
            )
            batch = _read_entries(reply)
            if not batch:
                return
            await self._deliver(client, sink, batch)
            after = batch[-1][0]

    async def _claim_idle(self, client: Redis) -> list[Entry]:
        """One XAUTOCLAIM step of the current sweep, or nothing when no sweep is due."""
        if self._claim_cursor == CURSOR_DONE:
            if time.monotonic() < self._next_claim:
                return []
            self._next_claim = time.monotonic() + self._claim_every
        reply = await self._call(
            client.xautoclaim(
                self._settings.stream,
                self._group,
                self._consumer,
                min_idle_time=self._settings.claim_idle_ms,
                start_id=self._claim_cursor,
                count=self._settings.batch,
            )
        )
        cursor = reply[0]
        self._claim_cursor = cursor.decode("ascii") if isinstance(cursor, bytes) else str(cursor)
        return _entries(reply[1])

    async def _read_new(self, client: Redis) -> list[Entry]:
        """New entries, waiting up to `block_ms` (less when a claim sweep is due sooner)."""
        until_claim_ms = int((self._next_claim - time.monotonic()) * 1000)
        block = max(1, min(self._settings.block_ms, until_claim_ms))
        reply = await self._call(
            client.xreadgroup(
                self._group,
                self._consumer,
                {self._settings.stream: ">"},
                count=self._settings.batch,
                block=block,
            ),
            block_ms=block,
        )
        return _read_entries(reply)

    async def _deliver(self, client: Redis, sink: Sink, batch: Sequence[Entry]) -> None:
        """Commit the batch, then acknowledge it in one XACK. Entries deleted from the stream
        while pending carry nothing and are only acknowledged. A failed commit propagates
        unacknowledged: the entries stay pending and come back."""
        if not batch:
            return
        stream = self._settings.stream
        messages = [
            Message(f"{stream}:{entry_id}", entry_payload(fields, self._settings.field))
            for entry_id, fields in batch
            if fields is not None
        ]
        if messages:
            await sink.commit(messages)
        await self._call(client.xack(stream, self._group, *(entry_id for entry_id, _ in batch)))

    async def _report_lag(self, client: Redis, sink: Sink) -> None:
        """The group's lag (entries not yet delivered) plus its pending entries, at most once per
        `LAG_EVERY_S`; None when Redis cannot tell (before 7.0, or after deletions)."""
        now = time.monotonic()
        if now < self._next_lag:
            return
        self._next_lag = now + LAG_EVERY_S
        groups = await self._call(client.xinfo_groups(self._settings.stream))
        for group in groups:
            name = group.get("name")
            if name in (self._group, self._group.encode("utf-8")):
                lag = group.get("lag")
                pending = group.get("pending") or 0
                sink.report_lag(None if lag is None else int(lag) + int(pending))
                return
        sink.report_lag(None)


KIND = SourceKind("redis-stream", RedisStreamSettings, RedisStreamSource)
