"""How records look over HTTP: RFC 3339 UTC times, payloads as text or base64, orjson bodies."""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.responses import Response

from asyncfn.domain.models import Attempt, Delivery, FunctionSpec, LogLine, Task
from asyncfn.domain.records import duration_ms, rfc3339
from asyncfn.domain.secrets import redact
from asyncfn.domain.states import TaskStatus
from asyncfn.domain.stats import FunctionStats, latency_ms
from asyncfn.domain.timeline import timeline


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


def function_stats_json(name: str, stats: FunctionStats, instances: int) -> dict[str, Any]:
    """`GET /v1/functions/{name}/stats`: counts of every status, what waits and runs, resources
    and latency percentiles over the last ended tasks, and the finish rate of the last minute."""
    counts = stats.counts
    return {
        "function": name,
        "counts": {s.value: counts.get(s, 0) for s in TaskStatus},
        "queued": counts.get(TaskStatus.ENQUEUED, 0) + counts.get(TaskStatus.RETRYING, 0),
        "running": counts.get(TaskStatus.RUNNING, 0) + counts.get(TaskStatus.STOPPING, 0),
        "instances": instances,
        "resources": {
            "cpu_ms": round(stats.cpu_ms, 3),
            "max_rss_mb": round(stats.max_rss_mb, 1) if stats.max_rss_mb is not None else None,
        },
        "latency_ms": {
            "queue_wait": latency_ms(stats.queue_wait_s),
            "run": latency_ms(stats.run_s),
            "end_to_end": latency_ms(stats.end_to_end_s),
        },
        "rates": {"finished_per_s_1m": round(stats.finished_last_minute / 60, 3)},
    }
