"""NodeMetrics: a node's Prometheus metrics on its own `CollectorRegistry` (never the global one).

Each engine service records its events here at the one place they happen; queue depth and
the oldest waiting task's age are read from the store at scrape time (`refresh`, awaited by the
`/metrics` route before `exposition`, since a collector cannot await).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from asyncfn.domain.stats import QueueStat

CONTENT_TYPE = CONTENT_TYPE_LATEST

LATENCY_BUCKETS_S = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
)  # fmt: skip
"""Seconds, from 1 ms to 1 h."""


class _QueueCollector(Collector):
    """`asyncfn_queue_depth` and `asyncfn_oldest_task_age_seconds` from the last snapshot."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.snapshot: Sequence[QueueStat] = ()

    def collect(self) -> Iterable[Metric]:
        depth = GaugeMetricFamily(
            "asyncfn_queue_depth", "Tasks waiting (Enqueued or Retrying)", labels=["function"]
        )
        age = GaugeMetricFamily(
            "asyncfn_oldest_task_age_seconds",
            "Age of the oldest waiting task",
            labels=["function"],
        )
        depths: dict[str, int] = {}
        oldest: dict[str, float] = {}
        for stat in self.snapshot:
            depths[stat.function] = depths.get(stat.function, 0) + stat.queued
            if stat.oldest_created_at is not None:
                at = oldest.get(stat.function, stat.oldest_created_at)
                oldest[stat.function] = min(at, stat.oldest_created_at)
        now = self._clock()
        for function, count in sorted(depths.items()):
            depth.add_metric([function], count)
            if function in oldest:
                age.add_metric([function], max(0.0, now - oldest[function]))
        return [depth, age]


class NodeMetrics:
    """The node's metrics; `bind` tells it where queue stats and instance counts come from."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.submissions = Counter(
            "asyncfn_submissions", "Tasks accepted", ["function"], registry=r
        )
        self.finishes = Counter(
            "asyncfn_finishes", "Tasks that ended, by status", ["function", "status"], registry=r
        )
        self.retries = Counter(
            "asyncfn_retries", "Attempts that failed and will retry", ["function"], registry=r
        )
        self.expirations = Counter(
            "asyncfn_expirations", "Tasks expired past max event age", ["function"], registry=r
        )
        self.stops = Counter("asyncfn_stops", "Stops requested", ["function"], registry=r)
        self.deliveries = Counter(
            "asyncfn_deliveries",
            "Destination delivery attempts, by outcome (delivered, retry, dead)",
            ["type", "outcome"],
            registry=r,
        )
        self.trigger_messages = Counter(
            "asyncfn_trigger_messages",
            "Messages a trigger committed, by outcome (created, duplicate)",
            ["trigger", "outcome"],
            registry=r,
        )
        self.trigger_errors = Counter(
            "asyncfn_trigger_errors",
            "Times a trigger's source failed and was restarted",
            ["trigger"],
            registry=r,
        )
        self.trigger_lag = Gauge(
            "asyncfn_trigger_lag",
            "Messages waiting in a trigger's source beyond what it pulled",
            ["trigger"],
            registry=r,
        )
        self.running = Gauge(
            "asyncfn_running_tasks", "Attempts running on this node", ["function"], registry=r
        )
        self.instances = Gauge(
            "asyncfn_instances", "Instance processes on this node", ["function"], registry=r
        )
        self.queue_wait = Histogram(
            "asyncfn_queue_wait_seconds",
            "From when a task became due to its claim",
            ["function"],
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.run = Histogram(
            "asyncfn_run_seconds",
            "Duration of one attempt",
            ["function"],
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.end_to_end = Histogram(
            "asyncfn_end_to_end_seconds",
            "From submission to the end, for tasks that ended",
            ["function"],
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self._queue = _QueueCollector(clock)
        r.register(self._queue)
        self._queue_stats: Callable[[], Awaitable[Sequence[QueueStat]]] | None = None
        self._instance_counts: Callable[[], Mapping[str, int]] | None = None

    def bind(
        self,
        queue_stats: Callable[[], Awaitable[Sequence[QueueStat]]],
        instance_counts: Callable[[], Mapping[str, int]],
    ) -> None:
        self._queue_stats = queue_stats
        self._instance_counts = instance_counts

    def instance_count(self, function: str) -> int:
        counts = self._instance_counts() if self._instance_counts is not None else {}
        return counts.get(function, 0)

    async def refresh(self) -> None:
        """Read what is computed at scrape time: the queue snapshot and instance counts."""
        if self._queue_stats is not None:
            self._queue.snapshot = await self._queue_stats()
        if self._instance_counts is not None:
            counts = self._instance_counts()
            for labels in list(self._known_instance_labels()):
                if labels not in counts:
                    self.instances.labels(labels).set(0)
            for function, count in counts.items():
                self.instances.labels(function).set(count)

    def _known_instance_labels(self) -> Iterable[str]:
        for metric in self.instances.collect():
            for sample in metric.samples:
                yield sample.labels["function"]

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric (call `refresh` first)."""
        return generate_latest(self.registry)
