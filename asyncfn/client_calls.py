"""The client's requests and answers without I/O, shared by `Client` and `AsyncClient`: the
step types, reading answers (and errors), encodings. Each resource's calls are in its module
(`client_functions`, `client_tasks`, ...).

A `Call` says which request to send and how to read its answer. An operation of several
requests (deploy, wait, follow logs, page through tasks) is a generator: it yields a `Call` and
is sent back the call's parsed answer, yields a float to pause that many seconds, and yields an
`Emit` to hand a value to an iterating caller. Each client has one driver that performs those
steps, blocking or awaited; nothing else differs between them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypedDict, TypeVar
from urllib.parse import quote

import httpx

from asyncfn.client_errors import (
    ApiError,
    ConflictError,
    NotFoundError,
    RateLimited,
    TaskFailed,
    TaskTimeout,
)

DEFAULT_URL = "http://127.0.0.1:8400"
FIRST_POLL_S = 0.005
MAX_POLL_S = 0.25

T = TypeVar("T")
When = datetime | str
"""A time for the API: an aware datetime, or a string sent as given (RFC 3339)."""


class BatchItem(TypedDict, total=False):
    """One item of a batch; any other value (or a mapping without `payload`) is a payload."""

    payload: Any
    task_id: str
    delay_s: float
    run_at: When
    priority: int


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One request and how to read its answer; `read_s` overrides the client's read timeout."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: Mapping[str, str] | None = None
    headers: Mapping[str, str] | None = None
    content: bytes | None = None
    json: Any = None
    read_s: float | Literal["default"] | None = "default"

    def request(self, http: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        timeout: httpx.Timeout | Any = httpx.USE_CLIENT_DEFAULT
        if self.read_s != "default":
            base = http.timeout
            timeout = httpx.Timeout(
                connect=base.connect, read=self.read_s, write=base.write, pool=base.pool
            )
        return http.build_request(
            self.method,
            self.path,
            params=self.params,
            headers=self.headers,
            content=self.content,
            json=self.json,
            timeout=timeout,
        )


@dataclass(frozen=True, slots=True)
class Emit:
    """A value an iterating operation hands to its caller."""

    item: Any


Step = Call[Any] | float
"""A call to perform (answered with its parsed answer) or a pause in seconds."""
Flow = Generator[Step, Any, T]
"""An operation that ends with a value."""
Stream = Generator[Step | Emit, Any, None]
"""An operation that hands out values as it goes."""


def default_headers(api_key: str | None) -> dict[str, str]:
    headers = {"User-Agent": "asyncfn-client"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


# -- answers ----------------------------------------------------------------------------------


def body_of(response: httpx.Response) -> Any:
    """The answer's JSON, its text when it is not JSON, or None when it is empty."""
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text


def error_of(response: httpx.Response) -> ApiError:
    """The exception for an error answer, from its `{"error": {...}}` body when it has one."""
    body = body_of(response)
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    status = response.status_code
    code = str(error.get("code") or f"http_{status}")
    text = body if isinstance(body, str) and body else response.reason_phrase
    message = str(error.get("message") or text or f"HTTP {status}")
    field = error.get("field")
    if status == 404:
        return NotFoundError(status, code, message, field, body)
    if status == 409:
        # duplicate_task names the task holding the id; transition_refused the task and the
        # status it is in. Either way the error's task_id and status.
        task_id, current = error.get("task_id"), error.get("status")
        return ConflictError(
            status,
            code,
            message,
            field,
            body,
            existing_task_id=str(task_id) if task_id is not None else None,
            existing_status=str(current) if current is not None else None,
        )
    if status == 429:
        return RateLimited(status, code, message, field, body, retry_after_s=_retry_after(response))
    return ApiError(status, code, message, field, body)


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait, from the error body's `retry_after_s` (exact) or the `Retry-After`
    header (whole seconds); None when the answer says neither."""
    body = body_of(response)
    error = body.get("error") if isinstance(body, dict) else None
    exact = error.get("retry_after_s") if isinstance(error, dict) else None
    if isinstance(exact, int | float) and not isinstance(exact, bool):
        return float(exact)
    header = response.headers.get("Retry-After")
    try:
        return float(header) if header is not None else None
    except ValueError:
        return None  # an HTTP date: not sent by asyncfn; callers fall back to their own pause


def json_of(response: httpx.Response) -> dict[str, Any]:
    """A success answer's JSON object (every answer but a Sync invocation's is one)."""
    if response.is_error:
        raise error_of(response)
    body = body_of(response)
    if not isinstance(body, dict):
        status = response.status_code
        raise ApiError(status, "bad_answer", f"expected a JSON object, got {body!r:.200}")
    return body


def nothing_of(response: httpx.Response) -> None:
    if response.is_error:
        raise error_of(response)


def sync_result_of(response: httpx.Response) -> Any:
    """A Sync invocation's answer: the result, TaskFailed on 502, TaskTimeout on 504."""
    task_id = response.headers.get("X-Task-Id")
    if response.status_code == 502:
        body = body_of(response)
        error = body.get("error") if isinstance(body, dict) else None
        error = error if isinstance(error, dict) else {"message": str(body)}
        status = str(error.get("status") or "Failed")
        raise TaskFailed(task_id, status, error, status_code=502, body=body)
    if response.status_code == 504:
        message = f"task {task_id} did not finish within the server's sync wait; it keeps running"
        raise TaskTimeout(task_id, message, status_code=504, body=body_of(response))
    if response.is_error:
        raise error_of(response)
    return body_of(response)


def result_of(task: Mapping[str, Any]) -> Any:
    """A terminal task's result, or TaskFailed when it did not succeed."""
    if task["status"] != "Succeeded":
        raise TaskFailed(task["id"], task["status"], task.get("error"), body=dict(task))
    return task.get("result")


# -- encodings --------------------------------------------------------------------------------


def segment(value: str) -> str:
    return quote(value, safe="")


def rfc3339(value: When) -> str:
    """Strings pass as given; aware datetimes become UTC RFC 3339; naive ones are refused."""
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        raise ValueError("a datetime for the API needs a timezone, e.g. datetime.now(UTC)")
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def encode_payload(payload: Any) -> tuple[bytes, str]:
    """Bytes go as they are, a string as UTF-8, anything else as its JSON encoding."""
    if isinstance(payload, bytes | bytearray | memoryview):
        return bytes(payload), "application/octet-stream"
    if isinstance(payload, str):
        return payload.encode(), "text/plain; charset=utf-8"
    return json.dumps(payload, separators=(",", ":")).encode(), "application/json"


def json_payload(payload: Any) -> Any:
    """A payload inside a JSON batch; bytes travel as their UTF-8 text, so the same bytes land."""
    if isinstance(payload, bytes | bytearray | memoryview):
        try:
            return bytes(payload).decode()
        except UnicodeDecodeError:
            raise ValueError("a batch payload given as bytes must be UTF-8") from None
    return payload


# -- calls ------------------------------------------------------------------------------------


def get(path: str, params: Mapping[str, str] | None = None) -> Call[dict[str, Any]]:
    return Call("GET", path, json_of, params=params)


def function_path(name: str) -> str:
    return f"/v1/functions/{segment(name)}"


def task_path(task_id: str) -> str:
    return f"/v1/tasks/{segment(task_id)}"
