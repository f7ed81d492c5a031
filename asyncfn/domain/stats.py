"""A function's statistics as the store reads them (queue snapshot, recent latencies, resources)
and the pure arithmetic over them (percentiles)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from asyncfn.domain.states import TaskStatus

RECENT_ENDED = 1_000
"""How many of a function's latest ended tasks the latency percentiles and resources cover."""


@dataclass(frozen=True, slots=True)
class QueueStat:
    """The waiting tasks (Enqueued or Retrying, due or not) of one function."""

    tenant: str
    function: str
    queued: int
    oldest_created_at: float | None


@dataclass(frozen=True, slots=True)
class FunctionStats:
    """What `Store.function_stats` reads: counts by status, the waiting tasks not due yet, the
    tasks created and ended in the last minute, and over the function's last `RECENT_ENDED`
    ended tasks, their latencies (seconds) and resource use."""

    counts: dict[TaskStatus, int]
    queue_wait_s: tuple[float, ...]
    run_s: tuple[float, ...]
    end_to_end_s: tuple[float, ...]
    cpu_ms: float
    max_rss_mb: float | None
    finished_last_minute: int
    submitted_last_minute: int = 0
    """Tasks created in the minute before the read's `now`."""
    delayed: int = 0
    """Enqueued or Retrying tasks whose `run_at` is after `now` (a delay, or a retry backoff)."""


def percentile(values: Sequence[float], q: float) -> float | None:
    """The `q`-th percentile (0 to 100) by nearest rank; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def latency_ms(values_s: Sequence[float]) -> dict[str, float | None]:
    """p50, p95 and p99 in milliseconds."""
    out: dict[str, float | None] = {}
    for q in (50, 95, 99):
        value = percentile(values_s, q)
        out[f"p{q}"] = None if value is None else round(value * 1000, 3)
    return out
