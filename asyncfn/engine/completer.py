"""Completer: turns each attempt's outcome into its transition through `domain.policies`.

Concurrent completions are batched by the store's group commit; a guard miss (the task was
stopped or taken over meanwhile) drops the outcome, so a task never gets two terminal states.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any

from asyncfn.domain.models import RetryBackoff
from asyncfn.domain.outcomes import Outcome, Succeeded, error_of
from asyncfn.domain.policies import next_status
from asyncfn.domain.states import TaskStatus
from asyncfn.engine.completions import Completions
from asyncfn.engine.reporter import AttemptReporter
from asyncfn.metrics import NodeMetrics
from asyncfn.store.base import Finish, RetryLater, Store

log = logging.getLogger("asyncfn.engine")


class Completer:
    name = "completer"

    def __init__(
        self,
        store: Store,
        reporter: AttemptReporter,
        completions: Completions,
        *,
        on_retry: Callable[[float], None],
        metrics: NodeMetrics | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self._metrics = metrics or NodeMetrics()
        self._store = store
        self._reporter = reporter
        self._completions = completions
        self._on_retry = on_retry
        self._clock = clock
        self._rng = rng

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def apply(
        self,
        row: int,
        attempt: int,
        max_attempts: int,
        backoff: RetryBackoff,
        outcome: Outcome,
        detail: dict[str, Any] | None = None,
        *,
        function: str,
        created_at: float | None = None,
    ) -> TaskStatus | None:
        """Commit the transition `outcome` calls for; the new status, or None on a guard miss.
        `function` and `created_at` (when known) label and time the metrics."""
        await self._reporter.flush()
        instance_started_at = self._reporter.take_started(row, attempt)
        nxt = next_status(outcome, attempt, max_attempts, backoff, self._rng)
        now = self._clock()
        duration_ms = round(outcome.duration_ms, 3)
        if nxt.status is TaskStatus.RETRYING:
            error = error_of(outcome)
            assert nxt.retry_in_s is not None and error is not None
            run_at = now + nxt.retry_in_s
            (ok,) = await self._store.retry_later(
                [
                    RetryLater(
                        row,
                        attempt,
                        now,
                        run_at,
                        error,
                        duration_ms,
                        outcome.resources,
                        detail,
                        instance_started_at,
                    )
                ]
            )
            if ok:
                self._on_retry(run_at)
        else:
            result = outcome.result if isinstance(outcome, Succeeded) else None
            (ok,) = await self._store.finish(
                [
                    Finish(
                        row,
                        attempt,
                        nxt.status,
                        now,
                        result=result,
                        error=error_of(outcome),
                        duration_ms=duration_ms,
                        resources=outcome.resources,
                        detail=detail,
                        instance_started_at=instance_started_at,
                    )
                ]
            )
            if ok:
                self._reporter.forget(row)
                self._completions.notify(row)
        if not ok:
            log.info("task row %s attempt %s was no longer running; outcome dropped", row, attempt)
            return None
        m = self._metrics
        m.run.labels(function).observe(outcome.duration_ms / 1000)
        if nxt.status is TaskStatus.RETRYING:
            m.retries.labels(function).inc()
        else:
            m.finishes.labels(function, nxt.status.value).inc()
            if created_at is not None:
                m.end_to_end.labels(function).observe(max(0.0, now - created_at))
        return nxt.status
