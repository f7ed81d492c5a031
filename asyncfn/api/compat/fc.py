"""Function Compute 3.0's task mode (`/2023-03-30/`) translated onto the engine: InvokeFunction
(Async and Sync), GetAsyncTask, ListAsyncTasks, StopAsyncTask and the async invoke config, all
through the same Submitter, store reads, TaskControl and catalog as the native API. Errors come
in FC's shape (`compat.errors.fc_error`)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel, ConfigDict
from starlette.responses import Response

from asyncfn.api.compat import errors
from asyncfn.api.compat.policy import (
    CloudAsyncConfig,
    destination_target,
    put_async_config,
    reset_async_config,
)
from asyncfn.api.deps import NodeServices, node_of, tenant_of
from asyncfn.api.render import bytes_value, json_response
from asyncfn.api.routes.invocations import wait_task
from asyncfn.domain import limits
from asyncfn.domain.errors import DuplicateTask, InvalidInput, NotFound, PayloadTooLarge
from asyncfn.domain.models import FunctionSpec, Submission, Task, TaskQuery
from asyncfn.domain.records import rfc3339
from asyncfn.domain.states import TaskStatus

PREFIX = "/2023-03-30"
CALLER = "fc-api"
FC_STATUS = {TaskStatus.RETRYING.value: TaskStatus.ENQUEUED.value}
"""asyncfn's statuses as FC names them: all the same but Retrying (FC has none; a task waiting
for its next attempt is back in the queue, and `alreadyRetriedTimes` says how often)."""
LIST_LIMIT = (1, 100)
LIST_LIMIT_DEFAULT = 20
CONFIG_FIELDS = (
    "maxAsyncRetryAttempts",
    "maxAsyncEventAgeInSeconds",
    "destinationConfig.onSuccess.destination",
    "destinationConfig.onFailure.destination",
)

router = APIRouter(prefix=PREFIX)


def _ms(ts: float | None) -> int | None:
    return None if ts is None else round(ts * 1000)


def _status(status: str) -> str:
    return FC_STATUS.get(status, status)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _destination_status(task: Task) -> str | None:
    if not task.deliveries:
        return None
    states = {d.status for d in task.deliveries}
    if "dead" in states:
        return "Failed"
    return "Succeeded" if states == {"delivered"} else "Running"


def _arn(tenant: str, name: str) -> str:
    return f"acs:fc:local:{tenant}:functions/{name}"


def task_json(task: Task, *, payload: bool = True) -> dict[str, Any]:
    """The AsyncTask as the SDK's model reads it. `startedTime` is when the task was accepted
    (the list's time filters and order use the same)."""
    error = task.error or {}
    message = f"{error.get('type', 'Error')}: {error.get('message', '')}" if error else None
    body: dict[str, Any] = {
        "taskId": task.id,
        "requestId": task.id,
        "functionArn": _arn(task.tenant, task.function),
        "qualifier": "LATEST",
        "status": _status(task.status.value),
        "taskErrorMessage": message,
        "returnPayload": _text(task.result),
        "alreadyRetriedTimes": max(0, task.attempt - 1),
        "startedTime": _ms(task.created_at),
        "endTime": _ms(task.finished_at),
        "durationMs": (
            round((task.finished_at - task.started_at) * 1000)
            if task.started_at is not None and task.finished_at is not None
            else None
        ),
        "instanceId": task.instance_id,
        "destinationStatus": _destination_status(task),
        "events": [
            {
                "eventId": i,
                "status": _status(e.status),
                "timestamp": _ms(e.at),
                "eventDetail": orjson.dumps(e.detail).decode() if e.detail else "",
            }
            for i, e in enumerate(task.events)
        ],
    }
    if payload:
        raw = bytes_value(task.payload)
        body["taskPayload"] = raw if isinstance(raw, str) else orjson.dumps(raw).decode()
    return body


@router.post("/functions/{name}/invocations")
async def invoke(name: str, request: Request) -> Response:
    """Async → 202 with the task id; Sync (the default) → the result, or FC's function error."""
    node = node_of(request)
    tenant = tenant_of(request)
    kind = request.headers.get("x-fc-invocation-type", "Sync")
    if kind not in ("Async", "Sync"):
        raise InvalidInput("x-fc-invocation-type is Async or Sync", field="x-fc-invocation-type")
    task_id = request.headers.get("x-fc-async-task-id")
    if task_id is not None and not limits.TASK_ID_RE.match(task_id):
        raise InvalidInput(
            "x-fc-async-task-id is 1 to 128 letters, digits or . _ : - (starting with a letter"
            " or digit)",
            field="x-fc-async-task-id",
        )
    node.submitter.function(tenant, name)
    payload = await request.body()
    if len(payload) > node.settings.payload_max_bytes:
        raise PayloadTooLarge(f"the payload is over {node.settings.payload_max_bytes} bytes")
    node.flow.admit(tenant, 1)
    (submitted,) = await node.submitter.submit(tenant, name, [Submission(payload, task_id)])
    if not submitted.created:
        raise DuplicateTask(submitted.task_id, submitted.status.value)
    headers = {"x-fc-request-id": submitted.task_id, "x-fc-async-task-id": submitted.task_id}
    if kind == "Async":
        return Response(status_code=202, headers=headers)
    assert submitted.row is not None
    task = await wait_task(node, tenant, submitted.task_id, submitted.row)
    if task is not None and task.status is TaskStatus.SUCCEEDED:
        body = task.result.encode() if isinstance(task.result, str) else orjson.dumps(task.result)
        return Response(body, 200, headers)
    error: dict[str, Any] = (task.error if task is not None else None) or {
        "type": "SyncTimeout" if task is None or not task.status.terminal else task.status.value,
        "message": f"task {submitted.task_id} did not succeed in time",
    }
    trace = str(error.get("traceback") or "")
    body_json = {
        "errorMessage": str(error.get("message", "")),
        "errorType": str(error.get("type", "Error")),
        "stackTrace": [line for line in trace.splitlines() if line.strip()],
    }
    return json_response(body_json, 200, {**headers, "x-fc-error-type": "UnhandledInvocationError"})


async def _task_of(node: NodeServices, tenant: str, name: str, task_id: str) -> Task:
    task = await node.store.get_task(tenant, task_id)
    if task is None or task.function != name:
        raise NotFound("task", task_id)
    return task


@router.get("/functions/{name}/async-tasks/{task_id}")
async def get_async_task(name: str, task_id: str, request: Request) -> Response:
    task = await _task_of(node_of(request), tenant_of(request), name, task_id)
    return json_response(task_json(task))


def _int(request: Request, field: str) -> int | None:
    raw = request.query_params.get(field)
    if raw is None or raw == "":
        return None
    if not raw.isascii() or not raw.lstrip("-").isdigit():
        raise InvalidInput(f"{field} must be an integer, got {raw!r}", field=field)
    return int(raw)


def _list_query(request: Request, tenant: str, name: str) -> tuple[TaskQuery, str | None, bool]:
    params = request.query_params
    limit = _int(request, "limit") or LIST_LIMIT_DEFAULT
    if not LIST_LIMIT[0] <= limit <= LIST_LIMIT[1]:
        raise InvalidInput(f"limit must be within {LIST_LIMIT[0]}…{LIST_LIMIT[1]}", field="limit")
    if params.get("sortOrderByTime", "desc").lower() != "desc" or params.get(
        "sortByCreationTimeAsc", "false"
    ).lower() in ("true", "1"):
        raise InvalidInput("only newest-first order is supported", field="sortOrderByTime")
    status = params.get("status")
    wanted: TaskStatus | None = None
    if status:
        try:
            wanted = TaskStatus(status)
        except ValueError:
            raise InvalidInput(f"unknown status {status!r}", field="status") from None
    token = params.get("nextToken")
    if token and not (token.isascii() and token.isdigit()):
        raise InvalidInput("nextToken is the nextToken of a previous page", field="nextToken")
    begin, end = _int(request, "startedTimeBegin"), _int(request, "startedTimeEnd")
    query = TaskQuery(
        tenant=tenant,
        function=name,
        status=wanted,
        since=begin / 1000 if begin is not None else None,
        until=end / 1000 if end is not None else None,
        limit=limit,
        cursor=int(token) if token else None,
    )
    include = params.get("includePayload", "false").lower() in ("true", "1")
    return query, params.get("prefix") or None, include


@router.get("/functions/{name}/async-tasks")
async def list_async_tasks(name: str, request: Request) -> Response:
    """Newest first; `prefix` filters each page (which may then hold fewer than `limit`)."""
    node = node_of(request)
    tenant = tenant_of(request)
    node.catalog.require(tenant, name)
    query, prefix, include = _list_query(request, tenant, name)
    tasks, next_cursor = await node.store.list_tasks(query)
    if prefix is not None:
        tasks = [t for t in tasks if t.id.startswith(prefix)]
    return json_response(
        {
            "tasks": [task_json(t, payload=include) for t in tasks],
            "nextToken": str(next_cursor) if next_cursor is not None else None,
        }
    )


@router.put("/functions/{name}/async-tasks/{task_id}/stop")
async def stop_async_task(name: str, task_id: str, request: Request) -> Response:
    """The native stop (TaskControl.stop_task): answers once the task is Stopped."""
    node = node_of(request)
    tenant = tenant_of(request)
    await _task_of(node, tenant, name, task_id)
    ctl = await node.control.stop_task(tenant, task_id, CALLER)
    return Response(status_code=200, headers={"x-fc-request-id": ctl.id})


class DestinationIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    destination: str | None = None


class DestinationConfigIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    onSuccess: DestinationIn | None = None
    onFailure: DestinationIn | None = None


class AsyncConfigIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    maxAsyncRetryAttempts: int | None = None
    maxAsyncEventAgeInSeconds: int | None = None
    asyncTask: bool | None = None
    destinationConfig: DestinationConfigIn | None = None


def config_json(spec: FunctionSpec) -> dict[str, Any]:
    policy = spec.async_policy
    destinations: dict[str, Any] = {}
    for key, stored in (("onSuccess", policy.on_success), ("onFailure", policy.on_failure)):
        target = destination_target(stored)
        if target:
            destinations[key] = {"destination": target}
    return {
        "asyncTask": True,
        "createdTime": rfc3339(spec.created_at),
        "lastModifiedTime": rfc3339(spec.updated_at),
        "functionArn": _arn(spec.tenant, spec.name),
        "maxAsyncRetryAttempts": policy.max_retries,
        "maxAsyncEventAgeInSeconds": policy.max_event_age_s,
        "destinationConfig": destinations,
    }


@router.put("/functions/{name}/async-invoke-config")
async def put_async_invoke_config(name: str, config: AsyncConfigIn, request: Request) -> Response:
    """Replace the function's async policy (left-out fields take the defaults). Every asyncfn
    invocation is a task, so `asyncTask` false is refused."""
    if config.asyncTask is False:
        raise InvalidInput("asyncfn always tracks async invocations as tasks", field="asyncTask")
    dest = config.destinationConfig
    cloud = CloudAsyncConfig(
        config.maxAsyncRetryAttempts,
        config.maxAsyncEventAgeInSeconds,
        dest.onSuccess.destination if dest and dest.onSuccess else None,
        dest.onFailure.destination if dest and dest.onFailure else None,
    )
    node = node_of(request)
    stored = await put_async_config(node, tenant_of(request), name, cloud, fields=CONFIG_FIELDS)
    return json_response(config_json(stored))


@router.get("/functions/{name}/async-invoke-config")
async def get_async_invoke_config(name: str, request: Request) -> Response:
    spec = node_of(request).catalog.require(tenant_of(request), name)
    return json_response(config_json(spec))


@router.delete("/functions/{name}/async-invoke-config", status_code=204)
async def delete_async_invoke_config(name: str, request: Request) -> Response:
    """The function's async policy back to the defaults."""
    await reset_async_config(node_of(request), tenant_of(request), name)
    return Response(status_code=204)


@router.get("/async-invoke-configs")
async def list_async_invoke_configs(request: Request) -> Response:
    """Every function of the caller's tenant (or the one `functionName` names), by name;
    `nextToken` is the last name of the previous page."""
    node = node_of(request)
    specs = node.catalog.of_tenant(tenant_of(request))
    only = request.query_params.get("functionName")
    if only:
        specs = [s for s in specs if s.name == only]
    after = request.query_params.get("nextToken")
    if after:
        specs = [s for s in specs if s.name > after]
    limit = _int(request, "limit") or LIST_LIMIT_DEFAULT
    page = specs[:limit]
    more = len(specs) > limit
    return json_response(
        {
            "configs": [config_json(s) for s in page],
            "nextToken": page[-1].name if more and page else None,
        }
    )


def create_fc_app(node: NodeServices) -> FastAPI:
    """The Function Compute sub-app; FastPath hands it every path under `/2023-03-30/`."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.state.node = node
    errors.install(app, errors.fc_error)
    app.include_router(router)
    return app


def owns(path: str) -> bool:
    return path.startswith(PREFIX + "/")
