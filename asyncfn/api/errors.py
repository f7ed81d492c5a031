"""The one mapping from domain errors (and FastAPI's own) to HTTP: status plus the JSON error body
`{"error": {"code", "message", "field", ...}}`."""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from asyncfn.api.render import json_response
from asyncfn.domain import errors

log = logging.getLogger("asyncfn.api")

STATUS: list[tuple[type[errors.AsyncfnError], int]] = [
    (errors.NotFound, 404),
    (errors.Malformed, 400),
    (errors.InvalidInput, 422),
    (errors.Conflict, 409),
    (errors.Unauthorized, 401),
    (errors.Forbidden, 403),
    (errors.PayloadTooLarge, 413),
    (errors.RateLimited, 429),
    (errors.Unavailable, 503),
]


def status_of(exc: errors.AsyncfnError) -> int:
    for kind, status in STATUS:
        if isinstance(exc, kind):
            return status
    return 500


def error_body(code: str, message: str, field: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": field, **extra}}


def error_response(exc: errors.AsyncfnError) -> Response:
    body = error_body(exc.code, exc.message, exc.field, **exc.extra)
    status = status_of(exc)
    headers: dict[str, str] | None = None
    if status == 401:
        headers = {"WWW-Authenticate": 'Bearer realm="asyncfn"'}
    elif isinstance(exc, errors.RateLimited):
        headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after_s)))}
    return json_response(body, status, headers)


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.AsyncfnError)
    return error_response(exc)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    if tuple(first.get("loc", ())) == ("body",) and not _json_content(request):
        # FastAPI reads a body as JSON only when it says so (or says nothing): `curl -d`
        # sends form-encoded, which would otherwise fail as "not a dictionary".
        message = "the body is JSON: send Content-Type: application/json"
        return json_response(error_body("unsupported_media_type", message, "Content-Type"), 415)
    loc = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
    field = ".".join(loc) or None
    message = f"{field}: {first['msg']}" if field else str(first["msg"])
    status = 400 if first.get("type") == "json_invalid" else 422
    return json_response(error_body("invalid_input", message, field), status)


def _json_content(request: Request) -> bool:
    kind = request.headers.get("content-type")
    if kind is None:
        return True
    media = kind.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return json_response(error_body(code, str(exc.detail)), exc.status_code, exc.headers)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return json_response(error_body("internal", "internal error; see the server log"), 500)


def install(app: FastAPI) -> None:
    app.add_exception_handler(errors.AsyncfnError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
