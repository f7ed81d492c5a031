"""Routes for functions: create/update, read, list, delete, and code upload."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request, Response

from asyncfn.api.deps import node_of, tenant_of
from asyncfn.api.render import (
    function_json,
    function_stats_json,
    json_response,
    key_stats_json,
)
from asyncfn.api.routes.nodes import live_nodes
from asyncfn.api.schemas import FunctionIn
from asyncfn.domain import limits
from asyncfn.domain.allowlist import refused_destination
from asyncfn.domain.errors import InvalidInput, Malformed, NotFound, PayloadTooLarge
from asyncfn.domain.models import FunctionSpec
from asyncfn.domain.placement import placement
from asyncfn.domain.secrets import keep_stored
from asyncfn.runtime.bundles import validate_zip
from asyncfn.runtime.pool import PoolStats

router = APIRouter(prefix="/v1/functions", tags=["functions"])


def _check_name(name: str) -> None:
    if not limits.NAME_RE.match(name):
        raise InvalidInput(
            "a function name is 1 to 64 letters, digits, '-' or '_', starting with a letter",
            field="name",
        )


@router.get("")
async def list_functions(request: Request) -> Response:
    specs = node_of(request).catalog.of_tenant(tenant_of(request))
    return json_response({"items": [function_json(s) for s in specs]})


@router.put("/{name}", status_code=200, responses={201: {"description": "created"}})
async def put_function(name: str, config: FunctionIn, request: Request) -> Response:
    """Create or replace a function. Secrets given as "(set)" keep their stored values."""
    _check_name(name)
    node = node_of(request)
    tenant = tenant_of(request)
    spec = keep_stored(config.to_spec(name, tenant), node.catalog.get(tenant, name))
    _check_webhooks(spec, node.settings.webhook_allow_hosts)
    spec, created = await node.catalog.put(spec)
    return json_response(function_json(spec), 201 if created else 200)


def _check_webhooks(spec: FunctionSpec, allow_hosts: list[str]) -> None:
    """422 naming `async.on_success.url` (or on_failure, on_dead_letter) for a webhook outside
    the allow-list."""
    policy = spec.async_policy
    configs = {"on_success": policy.on_success, "on_failure": policy.on_failure}
    refused = refused_destination({**configs, "on_dead_letter": policy.on_dead_letter}, allow_hosts)
    if refused is not None:
        field, message = refused
        raise InvalidInput(message, field=field)


@router.get("/{name}")
async def get_function(name: str, request: Request) -> Response:
    spec = node_of(request).catalog.require(tenant_of(request), name)
    return json_response(function_json(spec))


def _pool_stats(request: Request, tenant: str, name: str) -> PoolStats | None:
    """This node's pool of the function, as stats; None when the node runs none (yet)."""
    pool = node_of(request).dispatcher.pools().get((tenant, name))
    return None if pool is None else pool.stats()


@router.get("/{name}/stats")
async def function_stats(name: str, request: Request) -> Response:
    """The function's queue, instances, rates, latencies and limits.

    Cluster-wide, from the store:
    - `counts`: tasks in each status.
    - `queued`: Enqueued or Retrying tasks due now; `delayed`: those not due yet (a delay or
      run_at in the future, or a retry waiting out its backoff); `running`: Running or Stopping.
    - `rates`: `submitted_per_s_1m` (tasks created) and `finished_per_s_1m` (tasks ended),
      per second over the last minute.
    - `resources` (`cpu_ms` summed, peak `max_rss_mb`) and `latency_ms` (`queue_wait`, `run`,
      `end_to_end`, each `p50`, `p95`, `p99`, null without data) over the last 1,000 ended tasks.

    From the node that answers (its own pool only; zeros when it runs none):
    - `instances`: `total`, `idle`, `busy`, `starting` and the autoscaler's `target`.
    - `autoscaler.decisions`: its last target changes, oldest first: `at`, `before`, `after`,
      `reason`.

    From the function's config: `limits` (`max_concurrency`, `rate_limit`, `rate_burst`,
    `min_instances`, `max_instances`, `instance_concurrency`; null: no such limit).

    From the store, per limit of the function's `concurrency`: `keys`, each `key`, `limit`,
    `strategy` and its `busiest` values (up to 10, most running plus waiting first): `value`,
    `running`, `waiting` ([] without limits).

    From the live nodes (`GET /v1/nodes`): `placement`: `requires`, the names of the live
    `nodes` that run tasks and whose labels satisfy it, and `placeable` (false: no such node;
    the function's tasks wait Enqueued, and expire past `max_event_age_s`).
    """
    node = node_of(request)
    tenant = tenant_of(request)
    spec = node.catalog.require(tenant, name)
    stats = await node.store.function_stats(tenant, name, time.time())
    body = function_stats_json(spec, stats, _pool_stats(request, tenant, name))
    body["placement"] = placement(spec.requires, await live_nodes(node.store))
    body["keys"] = key_stats_json(await node.store.key_stats(tenant, name, spec.concurrency))
    return json_response(body)


@router.delete("/{name}", status_code=204)
async def delete_function(name: str, request: Request) -> Response:
    await node_of(request).catalog.delete(tenant_of(request), name)
    return Response(status_code=204)


@router.post("/{name}:suspend")
async def suspend_function(name: str, request: Request) -> Response:
    """Pause the function's queue: tasks are still accepted but none is dispatched."""
    spec = await node_of(request).control.pause_function(tenant_of(request), name, True)
    return json_response(function_json(spec))


@router.post("/{name}:resume")
async def resume_function(name: str, request: Request) -> Response:
    """Dispatch the function's queue again."""
    spec = await node_of(request).control.pause_function(tenant_of(request), name, False)
    return json_response(function_json(spec))


@router.put(
    "/{name}/code",
    openapi_extra={
        "requestBody": {
            "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}}
        }
    },
)
async def put_code(name: str, request: Request) -> Response:
    node = node_of(request)
    tenant = tenant_of(request)
    if node.catalog.get(tenant, name) is None:
        raise NotFound("function", name)
    data = await request.body()
    if len(data) > limits.CODE_MAX_BYTES:
        raise PayloadTooLarge(f"a code zip is at most {limits.CODE_MAX_BYTES} bytes", field="body")
    try:
        validate_zip(data)
    except InvalidInput as exc:
        raise Malformed(exc.message, field="body") from exc
    sha = await node.catalog.set_code(tenant, name, data)
    return json_response({"sha256": sha, "size": len(data)})
