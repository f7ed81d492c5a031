"""The errors `Client` and `AsyncClient` raise (client-side; the server's own are in domain/errors).

ApiError                 any error answer: status_code, code, message, field, body
├── NotFoundError        404
├── ConflictError        409; .existing_task_id, .existing_status name the task in the way
├── RateLimited          429 rate_limited: over a quota; .retry_after_s says when to retry
├── TaskFailed           the task ended in a terminal status other than Succeeded
└── TaskTimeout          the wait ended first; the task keeps running
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ApiError(Exception):
    """An error answer, or a task outcome the client reports as one; `status_code` is None when
    the client itself decided (a wait that ran out, a task fetched as Failed)."""

    def __init__(
        self,
        status_code: int | None,
        code: str,
        message: str,
        field: str | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.field = field
        self.body = body

    def __str__(self) -> str:
        where = f", HTTP {self.status_code}" if self.status_code is not None else ""
        return f"{self.message} ({self.code}{where})"


class NotFoundError(ApiError):
    """404: no such function or task."""


class ConflictError(ApiError):
    """409. `duplicate_task`: the task that already holds the id, and its status;
    `transition_refused` (stop, suspend, resume or rerun a task in the wrong status): the task
    and the status it is in. Both None when the answer names no task."""

    def __init__(
        self,
        status_code: int | None,
        code: str,
        message: str,
        field: str | None = None,
        body: Any = None,
        *,
        existing_task_id: str | None = None,
        existing_status: str | None = None,
    ) -> None:
        super().__init__(status_code, code, message, field, body)
        self.existing_task_id = existing_task_id
        self.existing_status = existing_status


class RateLimited(ApiError):
    """429: over the tenant's submit rate; nothing was accepted. `retry_after_s` is when a retry
    should succeed (from the answer's body or its Retry-After header; None if it says neither)."""

    def __init__(
        self,
        status_code: int | None,
        code: str,
        message: str,
        field: str | None = None,
        body: Any = None,
        *,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(status_code, code, message, field, body)
        self.retry_after_s = retry_after_s


class TaskFailed(ApiError):
    """The task ended Failed, Stopped, Expired or Invalid; `error` is its error JSON."""

    def __init__(
        self,
        task_id: str | None,
        status: str,
        error: Mapping[str, Any] | None,
        *,
        status_code: int | None = None,
        body: Any = None,
    ) -> None:
        error = dict(error or {})
        what = ": ".join(str(error[k]) for k in ("type", "message") if error.get(k))
        message = f"task {task_id} {status}" + (f": {what}" if what else "")
        super().__init__(status_code, "task_failed", message, None, body)
        self.task_id = task_id
        self.status = status
        self.error = error


class TaskTimeout(ApiError):
    """A wait for the task ended before the task did; the task itself keeps running."""

    def __init__(
        self,
        task_id: str | None,
        message: str,
        *,
        status: str | None = None,
        status_code: int | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(status_code, "task_timeout", message, None, body)
        self.task_id = task_id
        self.status = status
