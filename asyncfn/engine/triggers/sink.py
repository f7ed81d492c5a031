"""TriggerSink: commits a source's messages as tasks of its trigger's function through the
Submitter (one transaction per batch, the message id making the task id), holds the source back
while the function's queue is full, and keeps the trigger's live figures (`TriggerState`)."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from asyncfn.domain.models import Submission
from asyncfn.domain.triggers import Trigger, task_id
from asyncfn.engine.submitter import Submitter
from asyncfn.engine.triggers.base import Message
from asyncfn.metrics import NodeMetrics
from asyncfn.store.base import Store

RATE_WINDOW_S = 60.0
ROOM_POLL_S = 0.2

Phase = Literal["starting", "running", "holding", "failing", "disabled"]


@dataclass
class TriggerState:
    """What a trigger is doing on this node. `holding`: back-pressure, the function's queue is
    full; `failing`: the source failed and is restarted after `retry_at`."""

    phase: Phase = "starting"
    created: int = 0
    duplicates: int = 0
    lag: int | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    restarts: int = 0
    retry_at: float | None = None
    last_commit_at: float | None = None
    _window: deque[tuple[float, int]] = field(default_factory=deque, repr=False)

    def counted(self, at: float, created: int, duplicates: int) -> None:
        self.created += created
        self.duplicates += duplicates
        self.last_commit_at = at
        self._window.append((at, created))
        self._trim(at)

    def rate(self, now: float) -> float:
        """Tasks created per second over the last minute."""
        self._trim(now)
        return sum(n for _, n in self._window) / RATE_WINDOW_S

    def _trim(self, now: float) -> None:
        while self._window and self._window[0][0] < now - RATE_WINDOW_S:
            self._window.popleft()


class TriggerSink:
    """The `Sink` of one trigger's source on this node."""

    def __init__(
        self,
        trigger: Trigger,
        store: Store,
        submitter: Submitter,
        state: TriggerState,
        *,
        metrics: NodeMetrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._trigger = trigger
        self._store = store
        self._submitter = submitter
        self._metrics = metrics
        self._clock = clock
        self.state = state

    async def room(self) -> None:
        t = self._trigger
        while await self._store.queue_depth(t.tenant, t.function) >= t.max_queue_depth:
            self.state.phase = "holding"
            await asyncio.sleep(ROOM_POLL_S)
        self.state.phase = "running"

    async def commit(self, messages: Sequence[Message]) -> None:
        if not messages:
            return
        t = self._trigger
        subs = [Submission(m.payload, task_id=task_id(t.name, m.id)) for m in messages]
        results = await self._submitter.submit(t.tenant, t.function, subs)
        created = sum(1 for r in results if r.created)
        duplicates = len(results) - created
        self.state.counted(self._clock(), created, duplicates)
        self.state.phase = "running"
        if created:
            self._metrics.trigger_messages.labels(t.name, "created").inc(created)
        if duplicates:
            self._metrics.trigger_messages.labels(t.name, "duplicate").inc(duplicates)

    def report_lag(self, pending: int | None) -> None:
        self.state.lag = pending
        if pending is not None:
            self._metrics.trigger_lag.labels(self._trigger.name).set(pending)
