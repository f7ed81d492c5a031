"""create_app(node): the API as one ASGI app (FastAPI behind the invocation fast path), its
routers, error handlers and OpenAPI; create_worker_app(node): a worker node's port, which
answers `/healthz` and `/metrics` and refuses the rest with a 404 that says where the API is.
Nothing happens at import."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from starlette.responses import Response

from asyncfn.api import errors
from asyncfn.api.compat.entry import CompatApps
from asyncfn.api.deps import NodeServices
from asyncfn.api.fastpath import FastPath
from asyncfn.api.render import json_response
from asyncfn.api.routes import (
    deadletters,
    functions,
    invocations,
    nodes,
    operations,
    schedules,
    system,
    tasks,
    tenants,
    triggers,
)

TITLE = "asyncfn"
VERSION = "0.1.0"


def create_app(node: NodeServices) -> FastPath:
    app = FastAPI(
        title=TITLE,
        version=VERSION,
        description="Asynchronous function invocation with task mode.",
    )
    app.state.node = node
    errors.install(app)
    for module in (functions, tasks, deadletters, schedules, triggers, tenants, nodes, system):
        app.include_router(module.router)
    app.include_router(operations.router)  # /v1/tasks:stop beside tasks' /v1/tasks/{id}:stop
    app.include_router(system.probes)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=TITLE, version=VERSION, description=app.description, routes=app.routes
            )
            schema["paths"].update(invocations.OPENAPI_PATHS)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return FastPath(app, node, compat=CompatApps(node, node.keys))


NOT_SERVED = "not_served_here"
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def create_worker_app(node: NodeServices) -> FastPath:
    """A worker node's HTTP port: the probes, and a clear 404 for every API route."""
    app = FastAPI(
        title=f"{TITLE} worker",
        version=VERSION,
        description="A worker node: it runs tasks and serves only /healthz and /metrics.",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.node = node
    errors.install(app)
    app.include_router(system.probes)
    api_url = node.settings.api_url

    @app.api_route("/{path:path}", methods=ALL_METHODS, include_in_schema=False)
    async def not_served(path: str, request: Request) -> Response:
        where = f" at {api_url}" if api_url else ""
        message = (
            f"node {node.settings.node_name!r} is a worker: it runs tasks and serves only "
            f"/healthz and /metrics; send /{path} to an api (or all) node{where}"
        )
        body = errors.error_body(NOT_SERVED, message, role="worker", api_url=api_url)
        return json_response(body, 404)

    return FastPath(app, node, endpoints={})
