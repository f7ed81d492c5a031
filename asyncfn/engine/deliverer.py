"""Deliverer: the outbox → signed webhooks and chained functions, at least once.

Woken in-process when a task ends on this node, and by a 1 s poll (for tasks that ended through
expiry, deletion or another node). Each claim leases a delivery; a node that dies mid-delivery
leaves the lease to expire and the delivery is claimed again, under the same id.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import orjson

from asyncfn.domain import limits
from asyncfn.domain.allowlist import url_allowed
from asyncfn.domain.errors import AsyncfnError, NotFound
from asyncfn.domain.models import Delivery, Submission, Task
from asyncfn.domain.policies import delivery_next_at
from asyncfn.domain.records import task_record
from asyncfn.engine.service import Supervisor, wait_for_event
from asyncfn.engine.submitter import Submitter
from asyncfn.metrics import NodeMetrics
from asyncfn.store.base import Store

log = logging.getLogger("asyncfn.engine")

HTTP_TIMEOUT_S = 10.0
LEASE_S = 60.0
"""How long a claimed delivery is held: well past one HTTP attempt's timeout."""
POLL_S = 1.0
MAX_IN_FLIGHT = 64
COALESCE_S = 0.01


class Undeliverable(Exception):
    """A delivery that can never succeed (its target function is gone, the chain is too deep,
    its webhook is off the allow-list): dead at once, without retries."""


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """`X-Asyncfn-Signature`: HMAC-SHA256 of `{timestamp}.{body}` keyed by the secret, in hex."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def chain_depth(payload: bytes) -> int:
    """How many function destinations led to a task: its payload record's `chain_depth`, or 0
    for a task that was not chained."""
    try:
        record = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return 0
    depth = record.get("chain_depth") if isinstance(record, dict) else None
    return depth if isinstance(depth, int) and depth >= 0 else 0


def delivered_record(delivery: Delivery, task: Task) -> dict[str, Any]:
    """The task's record as `delivery` sends it: with `"dead_letter": true` from an
    `async.on_dead_letter` destination, so a receiver tells it from an on_failure delivery."""
    record = task_record(task)
    if delivery.destination.dead_letter:
        record["dead_letter"] = True
    return record


class Deliverer:
    name = "deliverer"

    def __init__(
        self,
        store: Store,
        submitter: Submitter,
        supervisor: Supervisor,
        *,
        node: str,
        backoff_base_s: float = 1.0,
        allow_hosts: Sequence[str] = (),
        poll_s: float = POLL_S,
        max_in_flight: int = MAX_IN_FLIGHT,
        transport: httpx.AsyncBaseTransport | None = None,
        metrics: NodeMetrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._metrics = metrics or NodeMetrics()
        self._store = store
        self._submitter = submitter
        self._supervisor = supervisor
        self._node = node
        self._backoff_base_s = backoff_base_s
        self._allow_hosts = tuple(allow_hosts)
        self._poll_s = poll_s
        self._max_in_flight = max_in_flight
        self._transport = transport
        self._clock = clock
        self._wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._http: httpx.AsyncClient | None = None

    async def start(self) -> None:
        if self._loop is None:
            pool_limits = httpx.Limits(
                max_connections=self._max_in_flight, max_keepalive_connections=self._max_in_flight
            )
            self._http = httpx.AsyncClient(
                timeout=HTTP_TIMEOUT_S, limits=pool_limits, transport=self._transport
            )
            self._loop = self._supervisor.spawn("deliverer", self._run())

    async def stop(self) -> None:
        """Stop claiming, abandon deliveries in flight (their leases expire and they are
        claimed again: at least once), then close the HTTP client."""
        await self._supervisor.cancel(self._loop)
        self._loop = None
        in_flight, self._in_flight = self._in_flight, set()
        for task in in_flight:
            task.cancel()
        await asyncio.gather(*in_flight, return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def wake(self, _row: int | None = None) -> None:
        """A task ended: look for due deliveries now rather than at the next poll."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            await self.deliver_due()
            if await wait_for_event(self._wake, self._poll_s):
                # Tasks end by the thousand per second in a drain, most with no destination:
                # one claim per COALESCE_S serves every end in between.
                await asyncio.sleep(COALESCE_S)
            self._wake.clear()

    async def deliver_due(self) -> int:
        """Claim due deliveries up to the free slots and start them; answers how many."""
        free = self._max_in_flight - len(self._in_flight)
        if free <= 0:
            return 0
        now = self._clock()
        claimed = await self._store.claim_deliveries(self._node, now, now + LEASE_S, free)
        for delivery in claimed:
            task = asyncio.get_running_loop().create_task(
                self._deliver(delivery), name=f"delivery-{delivery.id}"
            )
            self._in_flight.add(task)
            task.add_done_callback(self._done)
        return len(claimed)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._wake.set()  # a slot is free

    async def _deliver(self, delivery: Delivery) -> None:
        """One attempt of one delivery, recorded as done, retried later or dead."""
        error: str | None = None
        retry = True
        try:
            task = await self._store.get_task(delivery.tenant, delivery.task_id)
            if task is None:
                raise Undeliverable(f"task {delivery.task_id!r} no longer exists")
            if delivery.destination.type == "http":
                error = await self._post(delivery, task)
            else:
                error = await self._chain(delivery, task)
        except Undeliverable as exc:
            error, retry = str(exc), False
        except (httpx.HTTPError, AsyncfnError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # a bug or an unusable URL: recorded, retried, never fatal
            log.exception("delivery %s failed unexpectedly", delivery.id)
            error = f"{type(exc).__name__}: {exc}"
        now = self._clock()
        kind = delivery.destination.type
        if error is None:
            await self._store.delivery_done(delivery.id, delivery.attempts, now)
            self._metrics.deliveries.labels(kind, "delivered").inc()
            return
        next_at = (
            delivery_next_at(self._backoff_base_s, delivery.attempts, delivery.created_at, now)
            if retry
            else None
        )
        log.info(
            "delivery %s of task %s to %s failed (attempt %d, %s): %s",
            delivery.id,
            delivery.task_id,
            delivery.destination.target,
            delivery.attempts,
            "retrying" if next_at is not None else "dead",
            error,
        )
        await self._store.delivery_failed(delivery.id, delivery.attempts, now, error, next_at)
        self._metrics.deliveries.labels(kind, "retry" if next_at is not None else "dead").inc()

    async def _post(self, delivery: Delivery, task: Task) -> str | None:
        """POST the signed record; None when the receiver answered 2xx, else the error."""
        assert self._http is not None and delivery.destination.url is not None
        if not url_allowed(delivery.destination.url, self._allow_hosts):
            raise Undeliverable(
                f"{delivery.destination.url} is not on this node's webhook allow-list"
                " (webhook_allow_hosts); not delivered"
            )
        body = orjson.dumps(delivered_record(delivery, task))
        timestamp = int(self._clock())
        headers = {
            "Content-Type": "application/json",
            "X-Asyncfn-Delivery": delivery.id,
            "X-Asyncfn-Timestamp": str(timestamp),
        }
        if delivery.destination.dead_letter:
            headers["X-Asyncfn-Dead-Letter"] = "true"
        if delivery.destination.secret:
            headers["X-Asyncfn-Signature"] = signature(delivery.destination.secret, timestamp, body)
        resp = await self._http.post(delivery.destination.url, content=body, headers=headers)
        if resp.is_success:
            return None
        return f"HTTP {resp.status_code}"

    async def _chain(self, delivery: Delivery, task: Task) -> str | None:
        """Submit the record as a task of the target function, de-duplicated by the delivery
        id, so a delivery attempted again never makes a second task."""
        target = delivery.destination.function
        assert target is not None
        depth = chain_depth(task.payload) + 1
        if depth > limits.CHAIN_DEPTH_MAX:
            raise Undeliverable(
                f"chain depth limit ({limits.CHAIN_DEPTH_MAX}) exceeded: not submitted to"
                f" function {target!r}"
            )
        record: dict[str, Any] = {**delivered_record(delivery, task), "chain_depth": depth}
        submission = Submission(payload=orjson.dumps(record), task_id=delivery.id)
        try:
            await self._submitter.submit(delivery.tenant, target, [submission])
        except NotFound as exc:
            raise Undeliverable(f"function {target!r} does not exist") from exc
        return None
