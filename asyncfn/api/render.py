"""How records look over HTTP: RFC 3339 UTC times, payloads as text or base64, orjson bodies."""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from starlette.responses import Response

from asyncfn.domain.keystats import KeyStats
from asyncfn.domain.models import Attempt, Delivery, FunctionSpec, LogLine, Task, TaskKeys
from asyncfn.domain.records import duration_ms, rfc3339
from asyncfn.domain.secrets import redact
from asyncfn.domain.states import TaskStatus
from asyncfn.domain.stats import FunctionStats, latency_ms
from asyncfn.domain.timeline import timeline

if TYPE_CHECKING:
    from asyncfn.runtime.pool import PoolStats


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


def parse_rfc3339(text: str) -> float:
    """POSIX seconds of an RFC 3339 time; a time without offset is taken as UTC."""
    value = datetime.fromisoformat(text.strip())
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def bytes_value(data: bytes) -> str | dict[str, str]:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}


def task_json(task: Task, *, full: bool = True, now: float | None = None) -> dict[str, Any]:
    """The task as DESIGN.md shows it; `full` adds payload, events, attempts and the timeline
    (`now` closes its open intervals)."""
    last = task.attempts[-1] if task.attempts else None
    body: dict[str, Any] = {
        "id": task.id,
        "function": task.function,
        "status": task.status.value,
        "attempt": task.attempt,
        "max_attempts": task.max_attempts,
        "priority": task.priority,
        "created_at": rfc3339(task.created_at),
        "run_at": rfc3339(task.run_at),
        "started_at": rfc3339(task.started_at),
        "finished_at": rfc3339(task.finished_at),
        "duration_ms": duration_ms(task),
        "result": task.result,
        "error": task.error,
        "progress": task.progress,
        "instance_id": task.instance_id,
        "node": task.node,
        "rerun_of": task.rerun_of,
    }
    if full:
        body["payload"] = bytes_value(task.payload)
        body["purged_at"] = rfc3339(task.purged_at)
        body["attributes"] = task.attributes
        body["keys"] = task_keys_json(task.keys)
        body["resources"] = (
            _resources(last) if last is not None and last.cpu_ms is not None else None
        )
        body["events"] = [
            {"status": e.status, "at": rfc3339(e.at), "detail": e.detail} for e in task.events
        ]
        body["attempts"] = [
            {
                "number": a.number,
                "started_at": rfc3339(a.started_at),
                "finished_at": rfc3339(a.finished_at),
                "instance_id": a.instance_id,
                "node": a.node,
                "outcome": a.outcome,
                "error": a.error,
                "resources": _resources(a),
                "instance_started_at": rfc3339(a.instance_started_at),
            }
            for a in task.attempts
        ]
        body["deliveries"] = [delivery_json(d) for d in task.deliveries]
        line = timeline(task, now if now is not None else time.time())
        body["timeline"] = {
            "queued_ms": line.queued_ms,
            "cold_start_ms": line.cold_start_ms,
            "running_ms": list(line.running_ms),
            "suspended_ms": line.suspended_ms,
            "delivering_ms": line.delivering_ms,
        }
    return body


def task_keys_json(keys: TaskKeys | None) -> dict[str, Any] | None:
    """A task's key values: one per concurrency limit, the debounce and throttle keys."""
    if keys is None:
        return None
    return {
        "concurrency": list(keys.concurrency),
        "debounce": keys.debounce,
        "throttle": keys.throttle,
    }


def key_stats_json(stats: list[KeyStats]) -> list[dict[str, Any]]:
    """The `keys` of a function's stats: per concurrency limit, its busiest values."""
    return [
        {
            "key": k.limit.key,
            "limit": k.limit.limit,
            "strategy": k.limit.strategy,
            "busiest": [
                {"value": v.value, "running": v.running, "waiting": v.waiting} for v in k.busiest
            ],
        }
        for k in stats
    ]


def delivery_json(delivery: Delivery) -> dict[str, Any]:
    """One destination delivery of a task (the secret is never shown)."""
    return {
        "id": delivery.id,
        "type": delivery.destination.type,
        "target": delivery.destination.target,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "last_error": delivery.last_error,
        "delivered_at": rfc3339(delivery.delivered_at),
    }


def _resources(attempt: Attempt) -> dict[str, float | None]:
    cpu, rss = attempt.cpu_ms, attempt.max_rss_mb
    return {
        "cpu_ms": round(cpu, 3) if cpu is not None else None,
        "max_rss_mb": round(rss, 1) if rss is not None else None,
    }


def function_json(spec: FunctionSpec) -> dict[str, Any]:
    """The function as the API, the dashboard and the CLI show it: secrets redacted
    (`env` values and webhook secrets read REDACTED; see `domain.secrets`)."""
    config = redact(spec.to_config())
    config.pop("tenant", None)
    for key in ("created_at", "updated_at"):
        config[key] = rfc3339(config[key]) if config[key] else None
    return config


def log_json(line: LogLine) -> dict[str, Any]:
    return {"seq": line.seq, "at": rfc3339(line.at), "stream": line.stream, "line": line.line}


def function_stats_json(
    spec: FunctionSpec, stats: FunctionStats, pool: PoolStats | None
) -> dict[str, Any]:
    """`GET /v1/functions/{name}/stats`: the store's cluster-wide counts, rates, resources and
    latency percentiles, this node's `pool` (None: it runs no pool of the function) and the
    function's limits. The route's docstring lists every field."""
    counts = stats.counts
    waiting = counts.get(TaskStatus.ENQUEUED, 0) + counts.get(TaskStatus.RETRYING, 0)
    return {
        "function": spec.name,
        "counts": {s.value: counts.get(s, 0) for s in TaskStatus},
        "queued": max(0, waiting - stats.delayed),
        "delayed": stats.delayed,
        "running": counts.get(TaskStatus.RUNNING, 0) + counts.get(TaskStatus.STOPPING, 0),
        "instances": _instances_json(pool),
        "autoscaler": {"decisions": _decisions_json(pool)},
        "limits": {
            "max_concurrency": spec.max_concurrency,
            "rate_limit": spec.rate_limit,
            "rate_burst": spec.rate_burst,
            "min_instances": spec.min_instances,
            "max_instances": spec.max_instances,
            "instance_concurrency": spec.instance_concurrency,
        },
        "resources": {
            "cpu_ms": round(stats.cpu_ms, 3),
            "max_rss_mb": round(stats.max_rss_mb, 1) if stats.max_rss_mb is not None else None,
        },
        "latency_ms": {
            "queue_wait": latency_ms(stats.queue_wait_s),
            "run": latency_ms(stats.run_s),
            "end_to_end": latency_ms(stats.end_to_end_s),
        },
        "rates": {
            "submitted_per_s_1m": round(stats.submitted_last_minute / 60, 3),
            "finished_per_s_1m": round(stats.finished_last_minute / 60, 3),
        },
    }


DECISIONS_SHOWN = 10
"""How many of a pool's latest autoscaler decisions the stats show."""


def _instances_json(pool: PoolStats | None) -> dict[str, int]:
    if pool is None:
        return {"total": 0, "idle": 0, "busy": 0, "starting": 0, "target": 0}
    return {
        "total": pool.instances,
        "idle": pool.idle,
        "busy": pool.busy,
        "starting": pool.starting,
        "target": pool.target,
    }


def _decisions_json(pool: PoolStats | None) -> list[dict[str, Any]]:
    """The pool's latest target changes, oldest first."""
    if pool is None:
        return []
    return [
        {"at": rfc3339(d.at), "before": d.before, "after": d.after, "reason": d.reason}
        for d in pool.decisions[-DECISIONS_SHOWN:]
    ]
