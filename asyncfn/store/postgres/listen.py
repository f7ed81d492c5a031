"""PgListener: one LISTEN connection per node for every cross-node channel, and the channels'
payload formats. It reconnects with backoff and, after a reconnect, asks for a resync.

    asyncfn_ready    'tenant/function'   (queries.sql: insert_task, promote_due, notify_ready…)
    asyncfn_control  a ControlSignal as JSON (control.py, on stop/suspend/resume of a live task)
    asyncfn_catalog  'tenant/name'       (writes.py, on every change of a function)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import orjson
import psycopg

from asyncfn.store.feed import ControlSignal, FeedHandlers

READY_CHANNEL = "asyncfn_ready"
CONTROL_CHANNEL = "asyncfn_control"
CATALOG_CHANNEL = "asyncfn_catalog"
CHANNELS = (READY_CHANNEL, CONTROL_CHANNEL, CATALOG_CHANNEL)
LISTEN_BACKOFF_S = (0.1, 5.0)
"""The first and the longest wait before the LISTEN connection reconnects."""

log = logging.getLogger(__name__)


def control_payload(signal: ControlSignal) -> str:
    return orjson.dumps(
        {
            "kind": signal.kind,
            "row": signal.row,
            "attempt": signal.attempt,
            "node": signal.node,
            "tenant": signal.tenant,
            "function": signal.function,
        }
    ).decode()


def parse_control(payload: str) -> ControlSignal:
    """ValueError when `payload` is not a control signal."""
    try:
        raw = orjson.loads(payload)
        kind = raw["kind"]
        if kind not in ("stop", "suspend", "resume"):
            raise ValueError(f"unknown control kind {kind!r}")
        return ControlSignal(
            kind,
            int(raw["row"]),
            int(raw["attempt"]),
            str(raw["node"]),
            str(raw["tenant"]),
            str(raw["function"]),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"not a control signal: {payload!r}") from exc


class PgListener:
    """Hears `CHANNELS` on a dedicated autocommit connection and calls `handlers`."""

    def __init__(self, conninfo: str, handlers: FeedHandlers) -> None:
        self._conninfo = conninfo
        self._handlers = handlers
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Connect and LISTEN (raising when the server cannot be reached), then run."""
        if self._task is not None:
            return
        conn = await self._connect()
        self._task = asyncio.create_task(self._run(conn), name="asyncfn-pg-listen")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
        try:
            for channel in CHANNELS:
                await conn.execute(f"LISTEN {channel}".encode())
        except BaseException:
            await conn.close()
            raise
        return conn

    async def _run(self, conn: psycopg.AsyncConnection[Any]) -> None:
        delay = LISTEN_BACKOFF_S[0]
        while True:
            try:
                async with conn:
                    async for note in conn.notifies():
                        delay = LISTEN_BACKOFF_S[0]
                        self._deliver(note.channel, note.payload)
            except psycopg.Error as exc:
                log.warning("asyncfn: the LISTEN connection failed (%s); reconnecting", exc)
            while True:
                await asyncio.sleep(delay)
                delay = min(delay * 2, LISTEN_BACKOFF_S[1])
                try:
                    conn = await self._connect()
                    break
                except psycopg.Error as exc:
                    log.warning("asyncfn: cannot LISTEN yet (%s); retrying in %.1fs", exc, delay)
            self._call("resync", self._handlers.on_resync)

    def _deliver(self, channel: str, payload: str) -> None:
        if channel == CONTROL_CHANNEL:
            try:
                signal = parse_control(payload)
            except ValueError:
                log.warning("asyncfn: ignoring a malformed control signal %r", payload)
                return
            self._call(payload, self._handlers.on_control, signal)
            return
        tenant, _, name = payload.partition("/")
        if channel == READY_CHANNEL:
            self._call(payload, self._handlers.on_ready, tenant, name)
        elif channel == CATALOG_CHANNEL:
            self._call(payload, self._handlers.on_catalog, tenant, name)

    @staticmethod
    def _call(what: str, handler: Callable[..., None], *args: Any) -> None:
        """One signal; a failing handler is logged and does not stop the listener."""
        try:
            handler(*args)
        except Exception:  # the handler is the caller's code: keep listening whatever it raises
            log.exception("asyncfn: the feed handler failed for %s", what)
