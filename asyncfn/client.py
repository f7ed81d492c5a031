"""`Client` and `AsyncClient`: a node's HTTP API over httpx, blocking or awaited; HTTP only.

Each is its driver (`client_drivers`) plus one set of methods per resource (`client_functions`,
`client_invocations`, `client_tasks`, `client_schedules`, `client_triggers`, `client_tenants`,
`client_deadletters` as `client.dead_letters`);
those build their requests and read their answers through `client_calls`, so only the drivers
differ between the two. Errors (from `client_errors`):

    ApiError                 any error answer: status_code, code, message, field, body
    ├── NotFoundError        404
    ├── ConflictError        409; .existing_task_id, .existing_status name the task in the way
    ├── RateLimited          429 rate_limited: over a quota; .retry_after_s says when to retry
    ├── TaskFailed           the task ended in a terminal status other than Succeeded
    └── TaskTimeout          the wait ended first; the task keeps running

Transport failures (connection refused, a client-side timeout) stay httpx's own errors.
Task handles are in `client_handles`.
"""

from __future__ import annotations

from typing import Any

from asyncfn import client_calls as calls
from asyncfn.client_calls import DEFAULT_URL, BatchItem
from asyncfn.client_deadletters import AsyncDeadLettersApi, DeadLettersApi
from asyncfn.client_errors import (
    ApiError,
    ConflictError,
    NotFoundError,
    RateLimited,
    TaskFailed,
    TaskTimeout,
)
from asyncfn.client_functions import AsyncFunctionsApi, FunctionsApi
from asyncfn.client_handles import AsyncTaskHandle, TaskHandle
from asyncfn.client_invocations import AsyncInvocationsApi, InvocationsApi
from asyncfn.client_operations import AsyncOperationsApi, OperationsApi
from asyncfn.client_schedules import AsyncSchedulesApi, SchedulesApi
from asyncfn.client_tasks import AsyncTasksApi, TasksApi
from asyncfn.client_tenants import AsyncTenantsApi, TenantsApi
from asyncfn.client_triggers import AsyncTriggersApi, TriggersApi

__all__ = [
    "DEFAULT_URL",
    "ApiError",
    "AsyncClient",
    "AsyncTaskHandle",
    "BatchItem",
    "Client",
    "ConflictError",
    "NotFoundError",
    "RateLimited",
    "TaskFailed",
    "TaskHandle",
    "TaskTimeout",
]


class Client(
    FunctionsApi,
    InvocationsApi,
    TasksApi,
    SchedulesApi,
    TriggersApi,
    TenantsApi,
    DeadLettersApi,
    OperationsApi,
):
    """The blocking client. `transport` replaces httpx's (e.g. `httpx.MockTransport`)."""

    def health(self) -> dict[str, Any]:
        return self._run(calls.get("/healthz"))


class AsyncClient(
    AsyncFunctionsApi,
    AsyncInvocationsApi,
    AsyncTasksApi,
    AsyncSchedulesApi,
    AsyncTriggersApi,
    AsyncTenantsApi,
    AsyncDeadLettersApi,
    AsyncOperationsApi,
):
    """The asyncio client: `Client`'s methods, awaited; iterators are async iterators."""

    async def health(self) -> dict[str, Any]:
        return await self._run(calls.get("/healthz"))
