"""The client's requests and answers without I/O, shared by `Client` and `AsyncClient`.

A `Call` says which request to send and how to read its answer. An operation of several
requests (deploy, wait, follow logs, page through tasks) is a generator: it yields a `Call` and
is sent back the call's parsed answer, yields a float to pause that many seconds, and yields an
`Emit` to hand a value to an iterating caller. Each client has one driver that performs those
steps, blocking or awaited; nothing else differs between them.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, Literal, TypedDict, TypeVar
from urllib.parse import quote

import httpx

from asyncfn.client_errors import ApiError, ConflictError, NotFoundError, TaskFailed, TaskTimeout
from asyncfn.domain.states import TERMINAL
from asyncfn.runtime.bundles import zip_directory

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
    return ApiError(status, code, message, field, body)


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


def _seg(value: str) -> str:
    return quote(value, safe="")


def rfc3339(value: When) -> str:
    """Strings pass as given; aware datetimes become UTC RFC 3339; naive ones are refused."""
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        raise ValueError("a datetime for the API needs a timezone, e.g. datetime.now(UTC)")
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def encode_payload(payload: Any) -> tuple[bytes, str]:
    """Bytes go as they are, a string as UTF-8, anything else as its JSON encoding."""
    if isinstance(payload, bytes | bytearray | memoryview):
        return bytes(payload), "application/octet-stream"
    if isinstance(payload, str):
        return payload.encode(), "text/plain; charset=utf-8"
    return json.dumps(payload, separators=(",", ":")).encode(), "application/json"


def _json_payload(payload: Any) -> Any:
    """A payload inside a JSON batch; bytes travel as their UTF-8 text, so the same bytes land."""
    if isinstance(payload, bytes | bytearray | memoryview):
        try:
            return bytes(payload).decode()
        except UnicodeDecodeError:
            raise ValueError("a batch payload given as bytes must be UTF-8") from None
    return payload


def _batch_item(item: Any) -> dict[str, Any]:
    """The wire form of one item: always `{"payload": ...}`, so no payload is mistaken for one."""
    if not (isinstance(item, Mapping) and "payload" in item):
        return {"payload": _json_payload(item)}
    unknown = set(item) - set(BatchItem.__annotations__)
    if unknown:
        raise ValueError(f"unknown batch item keys: {sorted(unknown)}")
    wire = {k: v for k, v in item.items() if v is not None}
    wire["payload"] = _json_payload(item["payload"])
    if "run_at" in wire:
        wire["run_at"] = rfc3339(wire["run_at"])
    return wire


def function_config(
    handler: str | None,
    command: str | Iterable[str] | None,
    runtime: str | None,
    config: Mapping[str, Any],
) -> dict[str, Any]:
    """The PUT body; `async_=` stands for the `async` key, a command string is shlex-split."""
    body = {("async" if k == "async_" else k): v for k, v in config.items()}
    if command is not None:
        body["command"] = shlex.split(command) if isinstance(command, str) else list(command)
    if handler is not None:
        body["handler"] = handler
    body["runtime"] = runtime or ("command" if command is not None else "python")
    return body


def code_bytes(code: bytes | Path) -> bytes:
    """Code to upload: zip bytes as given, a zip file's bytes, or a directory zipped."""
    if isinstance(code, bytes | bytearray):
        return bytes(code)
    return zip_directory(code) if code.is_dir() else code.read_bytes()


# -- calls ------------------------------------------------------------------------------------


def get(path: str, params: Mapping[str, str] | None = None) -> Call[dict[str, Any]]:
    return Call("GET", path, json_of, params=params)


def function_path(name: str) -> str:
    return f"/v1/functions/{_seg(name)}"


def task_path(task_id: str) -> str:
    return f"/v1/tasks/{_seg(task_id)}"


def put_function(name: str, config: dict[str, Any]) -> Call[dict[str, Any]]:
    return Call("PUT", function_path(name), json_of, json=config)


def put_code(name: str, data: bytes) -> Call[str]:
    def sha256_of(response: httpx.Response) -> str:
        return str(json_of(response)["sha256"])

    headers = {"Content-Type": "application/zip"}
    return Call("PUT", f"{function_path(name)}/code", sha256_of, headers=headers, content=data)


def delete_function(name: str) -> Call[None]:
    return Call("DELETE", function_path(name), nothing_of)


def invoke_async(
    name: str,
    payload: Any,
    task_id: str | None,
    delay_s: float | None,
    run_at: When | None,
    priority: int | None,
) -> Call[dict[str, Any]]:
    content, content_type = encode_payload(payload)
    headers = {"X-Invocation-Type": "Async", "Content-Type": content_type}
    if task_id is not None:
        headers["X-Task-Id"] = task_id
    if delay_s is not None:
        headers["X-Delay-Seconds"] = _number(delay_s)
    if run_at is not None:
        headers["X-Run-At"] = rfc3339(run_at)
    if priority is not None:
        headers["X-Priority"] = str(int(priority))
    path = f"{function_path(name)}/invocations"
    return Call("POST", path, json_of, headers=headers, content=content)


def schedule_path(name: str) -> str:
    return f"/v1/schedules/{_seg(name)}"


def put_schedule(name: str, config: Mapping[str, Any]) -> Call[dict[str, Any]]:
    """`PUT /v1/schedules/{name}`; a bytes payload travels as its UTF-8 text."""
    body = dict(config)
    if "payload" in body:
        body["payload"] = _json_payload(body["payload"])
    return Call("PUT", schedule_path(name), json_of, json=body)


def delete_schedule(name: str) -> Call[None]:
    return Call("DELETE", schedule_path(name), nothing_of)


def create_tenant(name: str) -> Call[dict[str, Any]]:
    return Call("POST", "/v1/tenants", json_of, json={"name": name})


def create_key(tenant: str, name: str | None) -> Call[dict[str, Any]]:
    """`POST /v1/tenants/{tenant}/keys`; the answer's `key` is shown this once."""
    body = {"name": name} if name is not None else {}
    return Call("POST", f"/v1/tenants/{_seg(tenant)}/keys", json_of, json=body)


def revoke_key(key_id: str) -> Call[None]:
    return Call("DELETE", f"/v1/keys/{_seg(key_id)}", nothing_of)


def trigger_path(name: str) -> str:
    return f"/v1/triggers/{_seg(name)}"


def put_trigger(name: str, config: Mapping[str, Any]) -> Call[dict[str, Any]]:
    """`PUT /v1/triggers/{name}`: `function`, `type` and the source's settings side by side."""
    return Call("PUT", trigger_path(name), json_of, json=dict(config))


def delete_trigger(name: str) -> Call[None]:
    return Call("DELETE", trigger_path(name), nothing_of)


def function_action(name: str, action: Literal["suspend", "resume"]) -> Call[dict[str, Any]]:
    """`POST /v1/functions/{name}:{action}`; answers the function."""
    return Call("POST", f"{function_path(name)}:{action}", json_of)


def task_action(task_id: str, action: Literal["suspend", "resume"]) -> Call[dict[str, Any]]:
    """`POST /v1/tasks/{id}:{action}`; answers `{"task_id", "status"}`."""
    return Call("POST", f"{task_path(task_id)}:{action}", json_of)


def stop(task_id: str, timeout: float | None) -> Call[dict[str, Any]]:
    """The server waits for the task to stop (its grace, a few seconds more) and bounds that
    wait itself, so `timeout` None lifts the client's read timeout."""
    return Call("POST", f"{task_path(task_id)}:stop", json_of, read_s=timeout)


def rerun(task_id: str, new_task_id: str | None) -> Call[dict[str, Any]]:
    """`{"task_id": <new>, "status": "Enqueued", "rerun_of": task_id}`."""
    headers = {"X-Task-Id": new_task_id} if new_task_id is not None else None
    return Call("POST", f"{task_path(task_id)}:rerun", json_of, headers=headers)


def invoke_batch(name: str, items: Iterable[Any]) -> Call[dict[str, Any]]:
    wire = [_batch_item(item) for item in items]
    return Call("POST", f"{function_path(name)}/invocations:batch", json_of, json=wire)


def invoke_sync(name: str, payload: Any, timeout: float | None) -> Call[Any]:
    """`timeout` None waits as long as the server does (it answers 504 at its own limit)."""
    content, content_type = encode_payload(payload)
    headers = {"X-Invocation-Type": "Sync", "Content-Type": content_type}
    path = f"{function_path(name)}/invocations"
    return Call("POST", path, sync_result_of, headers=headers, content=content, read_s=timeout)


def task_params(
    function: str | None,
    status: str | None,
    since: When | None,
    until: When | None,
    limit: int,
    cursor: str | None,
) -> dict[str, str]:
    params = {"function": function, "status": status, "cursor": cursor, "limit": str(limit)}
    params["since"] = rfc3339(since) if since is not None else None
    params["until"] = rfc3339(until) if until is not None else None
    return {k: v for k, v in params.items() if v is not None}


def logs(task_id: str, after: int) -> Call[dict[str, Any]]:
    return get(f"{task_path(task_id)}/logs", {"after": str(after)})


# -- operations of several requests -----------------------------------------------------------


def deploy_flow(
    name: str, config: dict[str, Any], code: bytes | Path | None
) -> Flow[dict[str, Any]]:
    """PUT the config, then the code (read or zipped before any request is sent)."""
    data = code_bytes(code) if code is not None else None
    function: dict[str, Any] = yield put_function(name, config)
    if data is not None:
        sha256 = yield put_code(name, data)
        function = {**function, "code_sha256": sha256}
    return function


def wait_flow(task_id: str, timeout: float | None, poll_s: float) -> Flow[dict[str, Any]]:
    """Poll the task, 5 ms apart at first and doubling up to `poll_s`, until it is terminal."""
    deadline = None if timeout is None else time.monotonic() + timeout
    pause = min(FIRST_POLL_S, poll_s)
    while True:
        task: dict[str, Any] = yield get(task_path(task_id))
        if task["status"] in TERMINAL:
            return task
        left = float("inf") if deadline is None else deadline - time.monotonic()
        if left <= 0:
            message = f"task {task_id} is still {task['status']} after {timeout:g} s"
            raise TaskTimeout(task_id, message, status=task["status"])
        yield min(pause, left)
        pause = min(pause * 2, poll_s)


def follow_flow(task_id: str, after: int, poll_s: float) -> Stream:
    """Hand out log lines until the task is terminal and no line is left after that."""
    while True:
        page = yield logs(task_id, after)
        for line in page["items"]:
            after = max(after, int(line["seq"]))
            yield Emit(line)
        if not page["items"]:
            if page.get("status") in TERMINAL:
                return
            yield poll_s


def pages_flow(params: dict[str, str]) -> Stream:
    """Hand out every task of a listing, following `next_cursor` page after page."""
    while True:
        page = yield get("/v1/tasks", params)
        for task in page["items"]:
            yield Emit(task)
        if not page.get("next_cursor"):
            return
        params = {**params, "cursor": page["next_cursor"]}
