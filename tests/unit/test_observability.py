"""A task's timeline, function-stat percentiles, the JSON log formatter and NodeMetrics: pure
pieces of the observability surface."""

from __future__ import annotations

import io
import logging
import sys

import orjson
import pytest

from asyncfn.domain.models import Attempt, Delivery, Destination, Task, TaskEvent
from asyncfn.domain.states import TaskStatus
from asyncfn.domain.stats import QueueStat, latency_ms, percentile
from asyncfn.domain.timeline import timeline
from asyncfn.metrics import NodeMetrics
from asyncfn.server_logs import JsonLineFormatter, configure_logging

S = TaskStatus
T0 = 1_700_000_000.0


def attempt(
    number: int, started: float, finished: float | None, instance_at: float | None
) -> Attempt:
    return Attempt(number, started, finished, "i1", "n1", None, None, 5.0, 10.0, instance_at)


def delivery(delivered_at: float | None) -> Delivery:
    dest = Destination(type="http", statuses=(S.SUCCEEDED,), url="http://x")
    status = "delivered" if delivered_at is not None else "pending"
    return Delivery("d", 1, "t", "x", "f", dest, status, 1, T0, T0, delivered_at)


def make_task(
    events: list[tuple[TaskStatus, float]],
    attempts: list[Attempt] | tuple[()] = (),
    deliveries: list[Delivery] | tuple[()] = (),
    finished_at: float | None = None,
    status: TaskStatus = S.SUCCEEDED,
) -> Task:
    return Task(
        row=1,
        id="x",
        tenant="t",
        function="f",
        status=status,
        attempt=len(attempts),
        max_attempts=3,
        priority=0,
        payload=b"",
        created_at=T0,
        run_at=T0,
        started_at=None,
        finished_at=finished_at,
        result=None,
        error=None,
        progress=None,
        checkpoint=None,
        instance_id=None,
        node=None,
        events=tuple(TaskEvent(s.value, at) for s, at in events),
        attempts=tuple(attempts),
        deliveries=tuple(deliveries),
    )


def test_timeline_sums_queue_waits_suspensions_and_each_attempt() -> None:
    task = make_task(
        [
            (S.ENQUEUED, T0),
            (S.RUNNING, T0 + 1.0),
            (S.RETRYING, T0 + 2.0),
            (S.ENQUEUED, T0 + 4.0),
            (S.RUNNING, T0 + 4.5),
            (S.SUSPENDED, T0 + 5.0),
            (S.RUNNING, T0 + 7.0),
            (S.SUCCEEDED, T0 + 8.0),
        ],
        attempts=[
            attempt(1, T0 + 1.0, T0 + 2.0, T0 + 1.25),
            attempt(2, T0 + 4.5, T0 + 8.0, T0 + 4.5 + 0.01),
        ],
        deliveries=[delivery(T0 + 8.3), delivery(None)],
        finished_at=T0 + 8.0,
    )

    line = timeline(task, now=T0 + 100)

    assert line.queued_ms == 1500.0  # 1 s first, then 0.5 s after the retry's backoff
    assert line.suspended_ms == 2000.0
    assert line.running_ms == (1000.0, 3500.0)
    assert line.cold_start_ms == 10.0  # the latest attempt's
    assert line.delivering_ms == pytest.approx(300.0)


def test_timeline_of_a_waiting_task_counts_up_to_now_and_has_no_run() -> None:
    task = make_task([(S.ENQUEUED, T0)], status=S.ENQUEUED)

    line = timeline(task, now=T0 + 2.5)

    assert line.queued_ms == 2500.0
    assert (line.cold_start_ms, line.running_ms, line.delivering_ms) == (None, (), None)


def test_percentiles_by_nearest_rank_in_milliseconds() -> None:
    values = [i / 1000 for i in range(1, 101)]  # 1 ms … 100 ms

    assert percentile(values, 50) == 0.05
    assert percentile([], 50) is None
    assert latency_ms(values) == {"p50": 50.0, "p95": 95.0, "p99": 99.0}
    assert latency_ms([]) == {"p50": None, "p95": None, "p99": None}


def test_json_log_formatter_writes_one_object_per_line_with_the_exception() -> None:
    logger = logging.getLogger("asyncfn.test.jsonlog")
    record = logger.makeRecord(logger.name, logging.ERROR, __file__, 1, "hello %s", ("x",), None)
    try:
        raise ValueError("boom")
    except ValueError:
        failing = logger.makeRecord(
            logger.name, logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )

    plain = orjson.loads(JsonLineFormatter().format(record))
    failed = JsonLineFormatter().format(failing)

    assert plain["message"] == "hello x"
    assert plain["level"] == "ERROR"
    assert plain["logger"] == "asyncfn.test.jsonlog"
    assert plain["time"].endswith("Z")
    assert plain["exc"] is None
    assert "\n" not in failed
    assert "ValueError: boom" in orjson.loads(failed)["exc"]


def test_configure_logging_json_routes_uvicorn_through_the_root_handler() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure_logging("info", "json", stream)
        logging.getLogger("uvicorn.error").info("Uvicorn running")
        lines = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])

    assert lines == [
        {
            "time": lines[0]["time"],
            "level": "INFO",
            "logger": "uvicorn.error",
            "message": "Uvicorn running",
            "exc": None,
        }
    ]


async def test_node_metrics_live_on_their_own_registry_with_queue_gauges_at_scrape() -> None:
    one, two = NodeMetrics(clock=lambda: T0 + 10), NodeMetrics()
    one.submissions.labels("f").inc(3)

    async def stats() -> list[QueueStat]:
        return [QueueStat("t", "f", 4, T0), QueueStat("u", "f", 1, T0 + 5)]

    one.bind(stats, lambda: {"f": 2})
    await one.refresh()
    text = one.exposition().decode()

    assert 'asyncfn_submissions_total{function="f"} 3.0' in text
    assert 'asyncfn_queue_depth{function="f"} 5.0' in text
    assert 'asyncfn_oldest_task_age_seconds{function="f"} 10.0' in text
    assert 'asyncfn_instances{function="f"} 2.0' in text
    assert "asyncfn_submissions_total{" not in two.exposition().decode()
