"""create_app(node): the API as one ASGI app (FastAPI behind the invocation fast path), its
routers, error handlers and OpenAPI; nothing happens at import."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from asyncfn.api import errors
from asyncfn.api.deps import NodeServices
from asyncfn.api.fastpath import FastPath
from asyncfn.api.routes import (
    functions,
    invocations,
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
    for module in (functions, tasks, schedules, triggers, tenants, system):
        app.include_router(module.router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=TITLE, version=VERSION, description=app.description, routes=app.routes
            )
            schema["paths"].update(invocations.OPENAPI_PATHS)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return FastPath(app, node)
