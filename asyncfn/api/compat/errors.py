"""Platform errors in each cloud's error shape, so the official SDKs raise their own typed
errors: Lambda's `{"Type": "User", "message"}` with `X-Amzn-ErrorType`, Function Compute's
`{"Code", "Message", "RequestId"}`. One table per cloud; `install` puts the renderer on a
compat sub-app for domain, validation and routing errors alike."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from asyncfn.api.render import json_response
from asyncfn.domain import errors

log = logging.getLogger("asyncfn.api")

Render = Callable[[errors.AsyncfnError], Response]

AUTH_REASON = "auth_reason"
"""The `extra` key of an Unauthorized from `compat.signatures`: why the signature failed."""

LAMBDA_AUTH = {
    "missing": "MissingAuthenticationTokenException",
    "unknown_key": "UnrecognizedClientException",
    "skew": "InvalidSignatureException",
    "replay": "InvalidSignatureException",
    "bad_signature": "InvalidSignatureException",
}
FC_AUTH = {
    "missing": "MissingAuthorization",
    "unknown_key": "InvalidAccessKeyId.NotFound",
    "skew": "RequestTimeTooSkewed",
    "replay": "SignatureNonceUsed",
    "bad_signature": "SignatureNotMatch",
}


def _lambda_code(exc: errors.AsyncfnError) -> tuple[int, str]:
    match exc:
        case errors.NotFound():
            return 404, "ResourceNotFoundException"
        case errors.PayloadTooLarge():
            return 413, "RequestTooLargeException"
        case errors.InvalidInput():
            return 400, "InvalidParameterValueException"
        case errors.FunctionNotReady():
            return 502, "ResourceNotReadyException"
        case errors.Conflict():
            return 409, "ResourceConflictException"
        case errors.Unauthorized():
            reason = str(exc.extra.get(AUTH_REASON, "bad_signature"))
            return 403, LAMBDA_AUTH.get(reason, "InvalidSignatureException")
        case errors.Forbidden():
            return 403, "AccessDeniedException"
        case errors.RateLimited():
            return 429, "TooManyRequestsException"
        case _:
            return 500, "ServiceException"


def lambda_error(exc: errors.AsyncfnError) -> Response:
    status, code = _lambda_code(exc)
    headers = {"X-Amzn-ErrorType": code, "X-Amzn-RequestId": str(uuid.uuid4())}
    return json_response({"Type": "User", "message": exc.message}, status, headers)


def _fc_code(exc: errors.AsyncfnError) -> tuple[int, str]:
    match exc:
        case errors.NotFound():
            what = exc.code.removesuffix("_not_found")
            return 404, {"task": "AsyncTaskNotFound", "function": "FunctionNotFound"}.get(
                what, "ResourceNotFound"
            )
        case errors.PayloadTooLarge():
            return 413, "RequestEntityTooLarge"
        case errors.InvalidInput():
            return 400, "InvalidArgument"
        case errors.DuplicateTask():
            return 409, "StatefulAsyncInvocationAlreadyExists"
        case errors.FunctionNotReady():
            return 412, "FunctionNotReady"
        case errors.TransitionRefused():
            return 400, "AsyncTaskAlreadyFinished"
        case errors.Conflict():
            return 409, "ResourceConflict"
        case errors.Unauthorized():
            reason = str(exc.extra.get(AUTH_REASON, "bad_signature"))
            return 403, FC_AUTH.get(reason, "SignatureNotMatch")
        case errors.Forbidden():
            return 403, "AccessDenied"
        case errors.RateLimited():
            return 429, "ResourceThrottled"
        case errors.Unavailable():
            return 503, "ServiceUnavailable"
        case _:
            return 500, "InternalServerError"


def fc_error(exc: errors.AsyncfnError) -> Response:
    status, code = _fc_code(exc)
    request_id = str(uuid.uuid4())
    body = {"Code": code, "Message": exc.message, "RequestId": request_id}
    return json_response(body, status, {"x-fc-request-id": request_id})


def install(app: FastAPI, render: Render) -> None:
    """Every error of the sub-app `app` rendered by `render` in its cloud's shape."""

    async def domain(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, errors.AsyncfnError)
        return render(exc)

    async def validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query"))
        return render(errors.InvalidInput(f"{where}: {first['msg']}", field=where or None))

    async def http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            return render(errors.NotFound("resource", request.url.path))
        return render(errors.InvalidInput(f"{request.method} {request.url.path}: {exc.detail}"))

    async def unexpected(request: Request, exc: Exception) -> Response:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return render(errors.AsyncfnError("internal error; see the server log"))

    app.add_exception_handler(errors.AsyncfnError, domain)
    app.add_exception_handler(RequestValidationError, validation)
    app.add_exception_handler(HTTPException, http)
    app.add_exception_handler(Exception, unexpected)
