"""Lambda's Invoke (`/2015-03-31/functions/{name}/invocations`) and event-invoke-config
(`/2019-09-25/functions/{name}/event-invoke-config`, where boto3 sends it) translated onto the
engine: the same Submitter, completions and catalog as the native API. Errors come in Lambda's
shape (`compat.errors.lambda_error`) so boto3 raises its typed exceptions."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from asyncfn.api.compat import errors
from asyncfn.api.compat.policy import (
    CloudAsyncConfig,
    destination_target,
    put_async_config,
    reset_async_config,
)
from asyncfn.api.deps import NodeServices, node_of, tenant_of
from asyncfn.api.render import json_response
from asyncfn.api.routes.invocations import wait_task
from asyncfn.domain.errors import DuplicateTask, InvalidInput, NotFound, PayloadTooLarge
from asyncfn.domain.models import FunctionSpec, Submission, Task
from asyncfn.domain.states import TaskStatus

INVOKE_PREFIX = "/2015-03-31"
CONFIG_PREFIX = "/2019-09-25"
PREFIXES = (INVOKE_PREFIX, CONFIG_PREFIX)
ARN_PREFIX = "arn:aws:lambda:"
CONFIG_FIELDS = (
    "MaximumRetryAttempts",
    "MaximumEventAgeInSeconds",
    "DestinationConfig.OnSuccess.Destination",
    "DestinationConfig.OnFailure.Destination",
)
LAMBDA_RETRIES = (0, 2)
LAMBDA_EVENT_AGE_S = (60, 21_600)

router = APIRouter()


def function_name(raw: str) -> str:
    """A FunctionName as Lambda takes it: a name, a partial or a full ARN (the qualifier of
    an ARN must be $LATEST or absent: asyncfn has no versions)."""
    name = raw
    if raw.startswith(ARN_PREFIX) or raw.count(":") >= 2:
        name = raw.split(":function:", 1)[-1] if ":function:" in raw else raw.rsplit(":", 1)[-1]
    name, _, qualifier = name.partition(":")
    if qualifier not in ("", "$LATEST"):
        raise NotFound("function", raw)
    return name


def _qualifier(request: Request) -> None:
    qualifier = request.query_params.get("Qualifier")
    if qualifier not in (None, "$LATEST"):
        raise NotFound("function", f"qualifier {qualifier}")


@router.post(INVOKE_PREFIX + "/functions/{name}/invocations")
async def invoke(name: str, request: Request) -> Response:
    """Event → 202 with the task id in X-Amzn-RequestId; RequestResponse → the result;
    DryRun → 204 once the function is known."""
    node = node_of(request)
    tenant = tenant_of(request)
    name = function_name(name)
    _qualifier(request)
    kind = request.headers.get("x-amz-invocation-type", "RequestResponse")
    if kind not in ("Event", "RequestResponse", "DryRun"):
        raise InvalidInput(
            "X-Amz-Invocation-Type is Event, RequestResponse or DryRun",
            field="X-Amz-Invocation-Type",
        )
    node.submitter.function(tenant, name)
    if kind == "DryRun":
        return Response(status_code=204, headers={"X-Amzn-RequestId": "dry-run"})
    payload = await request.body()
    if len(payload) > node.settings.payload_max_bytes:
        raise PayloadTooLarge(f"the payload is over {node.settings.payload_max_bytes} bytes")
    node.flow.admit(tenant, 1)
    (submitted,) = await node.submitter.submit(tenant, name, [Submission(payload)])
    if not submitted.created:  # a generated id never collides; kept for the guard
        raise DuplicateTask(submitted.task_id, submitted.status.value)
    headers = {"X-Amzn-RequestId": submitted.task_id, "X-Amz-Executed-Version": "$LATEST"}
    if kind == "Event":
        return Response(status_code=202, headers=headers)
    assert submitted.row is not None
    task = await wait_task(node, tenant, submitted.task_id, submitted.row)
    return _sync_answer(task, submitted.task_id, headers)


def _sync_answer(task: Task | None, task_id: str, headers: dict[str, str]) -> Response:
    """The result as the body, or Lambda's function error: `X-Amz-Function-Error: Unhandled`
    and `{"errorMessage", "errorType", "stackTrace"}`."""
    if task is not None and task.status is TaskStatus.SUCCEEDED:
        return Response(orjson.dumps(task.result), 200, headers, "application/json")
    if task is None or not task.status.terminal:
        error: dict[str, Any] = {
            "type": "Asyncfn.SyncTimeout",
            "message": f"task {task_id} is still running; it goes on as a task",
        }
    else:
        error = task.error or {"type": task.status.value, "message": f"task {task.status.value}"}
    trace = str(error.get("traceback") or "")
    body = {
        "errorMessage": str(error.get("message", "")),
        "errorType": str(error.get("type", "Error")),
        "stackTrace": [line for line in trace.splitlines() if line.strip()],
    }
    return json_response(body, 200, {**headers, "X-Amz-Function-Error": "Unhandled"})


class OnTarget(BaseModel):
    model_config = ConfigDict(extra="ignore")
    Destination: str | None = None


class DestinationConfigIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    OnSuccess: OnTarget | None = None
    OnFailure: OnTarget | None = None


class EventInvokeConfigIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    MaximumRetryAttempts: int | None = Field(None, ge=LAMBDA_RETRIES[0], le=LAMBDA_RETRIES[1])
    MaximumEventAgeInSeconds: int | None = Field(
        None, ge=LAMBDA_EVENT_AGE_S[0], le=LAMBDA_EVENT_AGE_S[1]
    )
    DestinationConfig: DestinationConfigIn | None = None


def config_json(spec: FunctionSpec) -> dict[str, Any]:
    policy = spec.async_policy
    destinations: dict[str, Any] = {}
    for key, stored in (("OnSuccess", policy.on_success), ("OnFailure", policy.on_failure)):
        target = destination_target(stored)
        destinations[key] = {"Destination": target} if target else {}
    return {
        "LastModified": spec.updated_at,
        "FunctionArn": f"{ARN_PREFIX}local:000000000000:function:{spec.name}",
        "MaximumRetryAttempts": policy.max_retries,
        "MaximumEventAgeInSeconds": policy.max_event_age_s,
        "DestinationConfig": destinations,
    }


def _cloud_config(
    config: EventInvokeConfigIn, merged_from: FunctionSpec | None
) -> CloudAsyncConfig:
    """The cloud config; with `merged_from` (Update), fields left out keep their values."""
    dest = config.DestinationConfig
    success = dest.OnSuccess.Destination if dest and dest.OnSuccess else None
    failure = dest.OnFailure.Destination if dest and dest.OnFailure else None
    if merged_from is not None:
        old = merged_from.async_policy
        return CloudAsyncConfig(
            config.MaximumRetryAttempts
            if config.MaximumRetryAttempts is not None
            else old.max_retries,
            config.MaximumEventAgeInSeconds
            if config.MaximumEventAgeInSeconds is not None
            else old.max_event_age_s,
            success if dest and dest.OnSuccess else destination_target(old.on_success),
            failure if dest and dest.OnFailure else destination_target(old.on_failure),
        )
    return CloudAsyncConfig(
        config.MaximumRetryAttempts, config.MaximumEventAgeInSeconds, success, failure
    )


async def _put(request: Request, name: str, config: EventInvokeConfigIn, merge: bool) -> Response:
    node: NodeServices = node_of(request)
    tenant = tenant_of(request)
    name = function_name(name)
    _qualifier(request)
    spec = node.catalog.require(tenant, name)
    cloud = _cloud_config(config, spec if merge else None)
    stored = await put_async_config(node, tenant, name, cloud, fields=CONFIG_FIELDS)
    return json_response(config_json(stored))


@router.put(CONFIG_PREFIX + "/functions/{name}/event-invoke-config")
async def put_event_invoke_config(
    name: str, config: EventInvokeConfigIn, request: Request
) -> Response:
    """Replace the function's async policy: fields left out take asyncfn's defaults."""
    return await _put(request, name, config, merge=False)


@router.post(CONFIG_PREFIX + "/functions/{name}/event-invoke-config")
async def update_event_invoke_config(
    name: str, config: EventInvokeConfigIn, request: Request
) -> Response:
    """Change only the fields given."""
    return await _put(request, name, config, merge=True)


@router.get(CONFIG_PREFIX + "/functions/{name}/event-invoke-config")
async def get_event_invoke_config(name: str, request: Request) -> Response:
    _qualifier(request)
    spec = node_of(request).catalog.require(tenant_of(request), function_name(name))
    return json_response(config_json(spec))


@router.get(CONFIG_PREFIX + "/functions/{name}/event-invoke-config/list")
async def list_event_invoke_configs(name: str, request: Request) -> Response:
    spec = node_of(request).catalog.require(tenant_of(request), function_name(name))
    return json_response({"FunctionEventInvokeConfigs": [config_json(spec)], "NextMarker": None})


@router.delete(CONFIG_PREFIX + "/functions/{name}/event-invoke-config", status_code=204)
async def delete_event_invoke_config(name: str, request: Request) -> Response:
    """The function's async policy back to asyncfn's defaults."""
    _qualifier(request)
    await reset_async_config(node_of(request), tenant_of(request), function_name(name))
    return Response(status_code=204)


def create_lambda_app(node: NodeServices) -> FastAPI:
    """The Lambda sub-app, mounted at `/` under both of Lambda's date prefixes."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.state.node = node
    errors.install(app, errors.lambda_error)
    app.include_router(router)
    return app


def owns(path: str) -> bool:
    return path.startswith(tuple(p + "/" for p in PREFIXES))
