"""FastPath: the ASGI entry of the API. It names the caller of every HTTP request first
(`api.auth`: a missing or bad credential ends it with 401); invocations are then answered
straight from ASGI and every other request goes to the FastAPI app. Domain errors get the same
JSON error shape on both paths. The cloud APIs' paths (Lambda, Function Compute) go to
`compat.entry.CompatApps`, which checks the SDKs' own signatures instead of a bearer key. A
worker node's entry has no fast endpoints: every request goes to its small app."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from asyncfn.api.auth import Authenticator
from asyncfn.api.compat.entry import CompatApps
from asyncfn.api.deps import NodeServices
from asyncfn.api.errors import error_body, error_response
from asyncfn.api.render import json_response
from asyncfn.api.routes.cloudevents import receive
from asyncfn.api.routes.invocations import invoke, invoke_batch
from asyncfn.domain.errors import AsyncfnError

log = logging.getLogger("asyncfn.api")

Handler = Callable[[NodeServices, str, Request], Awaitable[Response]]
PREFIX = "/v1/functions/"
ENDPOINTS: dict[str, Handler] = {
    "/invocations": invoke,
    "/invocations:batch": invoke_batch,
    "/cloudevents": receive,
}


class FastPath:
    def __init__(
        self,
        app: FastAPI,
        node: NodeServices,
        endpoints: Mapping[str, Handler] = ENDPOINTS,
        compat: CompatApps | None = None,
    ) -> None:
        self.app = app
        self.node = node
        self.endpoints = endpoints
        self.auth = Authenticator(node.keys, node.tokens)
        self.compat = compat

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if self.compat is not None and self.compat.owns(scope["path"]):
                await self.compat(scope, receive, send)  # signed by the cloud SDKs instead
                return
            try:
                principal = await self.auth.principal(scope)
            except AsyncfnError as exc:
                await error_response(exc)(scope, receive, send)
                return
            scope.setdefault("state", {})["principal"] = principal
        route = _match(scope, self.endpoints)
        if route is None:
            await self.app(scope, receive, send)
            return
        handler, name = route
        request = Request(scope, receive)
        try:
            response = await handler(self.node, name, request)
        except AsyncfnError as exc:
            response = error_response(exc)
        except Exception:
            log.exception("unhandled error on POST %s", scope["path"])
            response = json_response(error_body("internal", "internal error; see the log"), 500)
        await response(scope, receive, send)


def _match(scope: Scope, endpoints: Mapping[str, Handler]) -> tuple[Handler, str] | None:
    if scope["type"] != "http" or scope["method"] != "POST":
        return None
    path: str = scope["path"]
    if not path.startswith(PREFIX):
        return None
    name, slash, action = path[len(PREFIX) :].partition("/")
    handler = endpoints.get(slash + action)
    if handler is None or not name:
        return None
    return handler, name
