"""CompatApps: the ASGI entry of the cloud APIs. FastPath hands it every request under Lambda's
or Function Compute's date prefixes instead of asking for a bearer key; it reads the body
(bounded), names the caller from the SDK's signature (`compat.signatures`), then replays the
body to the cloud's sub-app. Errors come in the cloud's own shape."""

from __future__ import annotations

from starlette.types import Message, Receive, Scope, Send

from asyncfn.api.compat import aws_lambda, errors, fc
from asyncfn.api.compat.signatures import SignatureAuth, SigningKeys
from asyncfn.api.deps import NodeServices
from asyncfn.domain.errors import AsyncfnError, PayloadTooLarge

BODY_SLACK = 64 * 1024
"""Room above the payload limit for the JSON of a config body."""


async def read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is over {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A receive that answers `body` once, then whatever the client sends (a disconnect)."""
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


class CompatApps:
    def __init__(self, node: NodeServices, keys: SigningKeys) -> None:
        self._limit = node.settings.payload_max_bytes + BODY_SLACK
        self._auth = SignatureAuth(keys)
        self._lambda = aws_lambda.create_lambda_app(node)
        self._fc = fc.create_fc_app(node)

    @staticmethod
    def owns(path: str) -> bool:
        return aws_lambda.owns(path) or fc.owns(path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        is_fc = fc.owns(scope["path"])
        render = errors.fc_error if is_fc else errors.lambda_error
        try:
            body = await read_body(receive, self._limit)
            principal = await self._auth.principal(scope, body)
        except AsyncfnError as exc:
            await render(exc)(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        app = self._fc if is_fc else self._lambda
        await app(scope, replay(body, receive), send)
