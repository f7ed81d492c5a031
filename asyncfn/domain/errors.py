"""Every platform error, each with a stable code; `api/errors.py` maps them to HTTP.

AsyncfnError
├── NotFound                 code: not_found (function_not_found, task_not_found)
├── InvalidInput             code: invalid_input (names the offending field)
│   └── Malformed            code: malformed (unparseable body or header)
├── Conflict
│   ├── TransitionRefused    code: transition_refused (names the current status)
│   ├── DuplicateTask        code: duplicate_task (names the existing task and its status)
│   └── FunctionNotReady     code: function_not_ready (no code uploaded)
├── Unauthorized             code: unauthorized (no, an unknown or a revoked credential)
├── Forbidden                code: forbidden (a valid credential without the right)
├── PayloadTooLarge          code: payload_too_large
├── RateLimited              code: rate_limited (over the tenant's submit rate; says when to retry)
└── Unavailable              code: unavailable (the node is shutting down)
"""

from __future__ import annotations

from typing import Any


class AsyncfnError(Exception):
    """Base of every platform error; `code` is stable and goes into the API's error body."""

    code = "internal"

    def __init__(self, message: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = extra


class NotFound(AsyncfnError):
    code = "not_found"

    def __init__(self, what: str, name: str) -> None:
        super().__init__(f"{what} {name!r} not found")
        self.code = f"{what}_not_found"


class InvalidInput(AsyncfnError):
    code = "invalid_input"


class Malformed(InvalidInput):
    """Input that cannot even be parsed (a body that is not a zip, a header that is no number)."""

    code = "malformed"


class Conflict(AsyncfnError):
    code = "conflict"


class TransitionRefused(Conflict):
    code = "transition_refused"

    def __init__(self, task_id: str, current: str, wanted: str) -> None:
        super().__init__(
            f"task {task_id!r} is {current}; it cannot move to {wanted}",
            task_id=task_id,
            status=current,
        )


class DuplicateTask(Conflict):
    code = "duplicate_task"

    def __init__(self, task_id: str, status: str) -> None:
        super().__init__(
            f"task id {task_id!r} is already used (status {status})",
            field="X-Task-Id",
            task_id=task_id,
            status=status,
        )


class FunctionNotReady(Conflict):
    code = "function_not_ready"

    def __init__(self, name: str) -> None:
        super().__init__(f"function {name!r} has no code yet: PUT /v1/functions/{name}/code")


class Unauthorized(AsyncfnError):
    code = "unauthorized"


class Forbidden(AsyncfnError):
    code = "forbidden"


class PayloadTooLarge(AsyncfnError):
    code = "payload_too_large"


class RateLimited(AsyncfnError):
    """Over a submit quota: nothing was accepted; `retry_after_s` says when it will be."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: float, field: str | None = None) -> None:
        super().__init__(message, field=field, retry_after_s=round(retry_after_s, 3))
        self.retry_after_s = retry_after_s


class Unavailable(AsyncfnError):
    code = "unavailable"
