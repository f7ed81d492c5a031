"""The hot path: invocations, single and batched. Kept thin: parse headers, submit, answer.

These two endpoints are served by `api.fastpath` straight from ASGI, ahead of FastAPI's routing
and dependency machinery (which would halve their throughput); `OPENAPI_PATHS` documents them.
"""

from __future__ import annotations

import re
import time
from typing import Any

import orjson
from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response

from asyncfn.api.deps import NodeServices, tenant_of
from asyncfn.api.errors import error_body
from asyncfn.api.render import json_response, parse_rfc3339
from asyncfn.api.schemas import BatchItemIn
from asyncfn.domain import limits
from asyncfn.domain.errors import DuplicateTask, InvalidInput, Malformed, PayloadTooLarge
from asyncfn.domain.models import Submission, Task
from asyncfn.domain.records import rfc3339
from asyncfn.domain.states import TaskStatus
from asyncfn.engine.completions import ended_within

INVOKE_DOC: dict[str, Any] = {
    "parameters": [
        {
            "name": "X-Invocation-Type",
            "in": "header",
            "schema": {"enum": ["Async", "Sync"]},
            "description": "Async (default): answer 202 with the task id once it is durable. "
            "Sync: wait for the task and answer its result.",
        },
        {
            "name": "X-Task-Id",
            "in": "header",
            "schema": {"type": "string"},
            "description": "client-given id; a second submission with it answers 409",
        },
        {
            "name": "X-Delay-Seconds",
            "in": "header",
            "schema": {"type": "number", "minimum": 0, "maximum": limits.DELAY_S_MAX},
        },
        {
            "name": "X-Run-At",
            "in": "header",
            "schema": {"type": "string", "format": "date-time"},
            "description": "RFC 3339, e.g. 2030-01-02T03:04:05Z; at most 7 days ahead",
        },
        {
            "name": "X-Priority",
            "in": "header",
            "schema": {
                "type": "integer",
                "minimum": limits.PRIORITY[0],
                "maximum": limits.PRIORITY[1],
            },
        },
    ],
    "requestBody": {
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
    },
}


_DATE, _TIME, _OFFSET = (
    r"\d{4}-\d{2}-\d{2}",
    r"\d{2}:\d{2}:\d{2}(\.\d+)?",
    r"([Zz]|[+-]\d{2}:\d{2})",
)
RFC3339_RE = re.compile(f"^{_DATE}[Tt ]{_TIME}{_OFFSET}?$", re.ASCII)
"""An RFC 3339 date-time (the offset may be left out: UTC); `datetime.fromisoformat` alone would
also take a bare date, a week date or a time without seconds."""
DECIMAL_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$", re.ASCII)
"""A plain decimal number: not NaN, infinity, hex or digits with '_' (all of which float takes)."""
INTEGER_RE = re.compile(r"^[+-]?\d+$", re.ASCII)


def _run_at(delay_s: float | None, run_at: str | None, field: str, now: float) -> float | None:
    if delay_s is not None and run_at is not None:
        raise Malformed("give either a delay or a run-at time, not both", field=field)
    if delay_s is not None:
        return now + delay_s if delay_s > 0 else None
    if run_at is not None:
        bad = Malformed(
            f"not an RFC 3339 time such as 2030-01-02T03:04:05Z: {run_at!r}", field=field
        )
        if not RFC3339_RE.match(run_at.strip()):
            raise bad
        try:
            at = parse_rfc3339(run_at)
        except ValueError as exc:  # well-formed but no such time (month 13, hour 25)
            raise bad from exc
        if at - now > limits.DELAY_S_MAX:
            raise Malformed("run-at is more than 7 days ahead", field=field)
        return at
    return None


def _header_number(
    headers: Headers, name: str, low: float, high: float, *, integer: bool = False
) -> float | None:
    """The header's value as a number within low…high; Malformed naming the header for
    anything else (text, NaN, infinity, a fraction where an integer is wanted)."""
    raw = headers.get(name)
    if raw is None:
        return None
    kind = "an integer" if integer else "a number"
    if not (INTEGER_RE if integer else DECIMAL_RE).match(raw.strip()):
        raise Malformed(f"{name} must be {kind}, got {raw!r}", field=name)
    value = float(raw)
    if not low <= value <= high:
        raise Malformed(f"{name} must be within {low:g}…{high:g}", field=name)
    return value


def submission_from_headers(headers: Headers, payload: bytes, now: float) -> Submission:
    task_id = headers.get("x-task-id")
    if task_id is not None and not limits.TASK_ID_RE.match(task_id):
        raise Malformed(
            "X-Task-Id is 1 to 128 letters, digits or . _ : - (starting with a letter or digit)",
            field="X-Task-Id",
        )
    delay = _header_number(headers, "X-Delay-Seconds", 0, limits.DELAY_S_MAX)
    priority = _header_number(headers, "X-Priority", *limits.PRIORITY, integer=True)
    run_at = _run_at(delay, headers.get("x-run-at"), "X-Run-At", now)
    return Submission(
        payload,
        task_id,
        run_at,
        int(priority) if priority is not None else None,
    )


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, or PayloadTooLarge once it is over `limit` bytes (or says it is)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the payload is over {limit} bytes", field="body")
    body = await request.body()
    if len(body) > limit:
        raise PayloadTooLarge(f"the payload is over {limit} bytes", field="body")
    return body


async def invoke(node: NodeServices, name: str, request: Request) -> Response:
    """`POST /v1/functions/{name}/invocations`."""
    tenant = tenant_of(request)
    kind = request.headers.get("x-invocation-type", "Async")
    if kind not in ("Async", "Sync"):
        raise Malformed("X-Invocation-Type is Async or Sync", field="X-Invocation-Type")
    node.submitter.function(tenant, name)
    payload = await read_body(request, node.settings.payload_max_bytes)
    submission = submission_from_headers(request.headers, payload, time.time())
    node.flow.admit(tenant, 1)
    (submitted,) = await node.submitter.submit(tenant, name, [submission], request.headers)
    if not submitted.created:
        raise DuplicateTask(submitted.task_id, submitted.status.value)
    if kind == "Sync":
        assert submitted.row is not None
        return await _wait_sync(node, tenant, submitted.task_id, submitted.row)
    body: dict[str, Any] = {"task_id": submitted.task_id, "status": submitted.status.value}
    if submitted.run_at is not None:  # set by a debounce or throttle: when it will run
        body["run_at"] = rfc3339(submitted.run_at)
    return json_response(body, 202)


async def wait_task(node: NodeServices, tenant: str, task_id: str, row: int) -> Task | None:
    """The task once it has ended, or as it is when `sync_timeout_s` runs out first (None
    when it is gone). The compat APIs' synchronous invocations wait through this too."""
    with node.completions.watch(row) as ended:
        task = await node.store.get_task(tenant, task_id)
        if task is not None and not task.status.terminal:
            await ended_within(ended, node.settings.sync_timeout_s)
            task = await node.store.get_task(tenant, task_id)
    return task


async def _wait_sync(node: NodeServices, tenant: str, task_id: str, row: int) -> Response:
    headers = {"X-Task-Id": task_id}
    task = await wait_task(node, tenant, task_id, row)
    if task is None or not task.status.terminal:
        body = error_body(
            "sync_timeout",
            "the task is still running; poll GET /v1/tasks/{id}",
            task_id=task_id,
            status=task.status.value if task else None,
        )
        return json_response(body, 504, headers)
    if task.status is TaskStatus.SUCCEEDED:
        return json_response(task.result, 200, headers)
    error = task.error or {"type": task.status.value, "message": f"task {task.status.value}"}
    return json_response(
        {"error": {**error, "task_id": task_id, "status": task.status.value}}, 502, headers
    )


async def invoke_batch(node: NodeServices, name: str, request: Request) -> Response:
    """`POST /v1/functions/{name}/invocations:batch`."""
    tenant = tenant_of(request)
    node.submitter.function(tenant, name)
    body = await read_body(request, node.settings.payload_max_bytes * 16)
    try:
        items = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Malformed(f"the body is not JSON: {exc}", field="body") from exc
    if not isinstance(items, list) or not 1 <= len(items) <= limits.BATCH_MAX_ITEMS:
        raise Malformed(
            f"the body is a JSON array of 1…{limits.BATCH_MAX_ITEMS} items", field="body"
        )
    now = time.time()
    submissions = [
        _batch_item(item, i, now, node.settings.payload_max_bytes) for i, item in enumerate(items)
    ]
    node.flow.admit(tenant, len(submissions))
    results = await node.submitter.submit(tenant, name, submissions, request.headers)
    return json_response(
        {
            "items": [
                {"task_id": r.task_id, "status": r.status.value, "created": r.created}
                | ({} if r.run_at is None else {"run_at": rfc3339(r.run_at)})
                for r in results
            ]
        },
        202,
    )


def _batch_item(raw: Any, index: int, now: float, max_bytes: int) -> Submission:
    field = f"[{index}]"
    if isinstance(raw, dict) and "payload" in raw:
        try:
            item = BatchItemIn.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise InvalidInput(
                f"item {index}: {where}: {first['msg']}", field=f"{field}.{where}"
            ) from exc
        value, task_id, priority = item.payload, item.task_id, item.priority
        run_at = _run_at(item.delay_s or None, item.run_at, f"{field}.run_at", now)
    else:
        value, task_id, priority, run_at = raw, None, None, None
    payload = value.encode() if isinstance(value, str) else orjson.dumps(value)
    if len(payload) > max_bytes:
        raise PayloadTooLarge(f"item {index}: the payload is over {max_bytes} bytes", field=field)
    return Submission(payload, task_id, run_at, priority)


def _operation(summary: str, body: dict[str, Any], answer: str) -> dict[str, Any]:
    return {
        "post": {
            "tags": ["invocations"],
            "summary": summary,
            "parameters": [
                {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
                *INVOKE_DOC["parameters"],
            ],
            "requestBody": body,
            "responses": {
                "202": {"description": answer},
                "200": {"description": "Sync: the handler's result"},
                "400": {"description": "a malformed header or body, named in error.field"},
                "404": {"description": "no such function"},
                "409": {"description": "the task id is taken, or the function has no code"},
                "413": {"description": "the payload is too large"},
                "502": {"description": "Sync: the task failed; the body holds its error"},
                "504": {"description": "Sync: the wait ended first; the task id in X-Task-Id"},
            },
        }
    }


OPENAPI_PATHS: dict[str, Any] = {
    "/v1/functions/{name}/invocations": _operation(
        "Invoke a function (a task per call)",
        INVOKE_DOC["requestBody"],
        'Async: {"task_id", "status": "Enqueued"} once the task is durable (and "run_at" when'
        " a debounce or throttle decided when it runs)",
    ),
    "/v1/functions/{name}/invocations:batch": _operation(
        "Invoke a function with up to 1,000 payloads in one transaction",
        {
            "content": {
                "application/json": {"schema": {"type": "array", "maxItems": 1000, "items": {}}}
            }
        },
        '{"items": [{"task_id", "status", "created", "run_at"?}]} in the order given',
    ),
}
