"""Bearer credentials → the caller (`Principal`): a tenant's API key, a task token, the admin
key, or nobody when auth is off (loopback with no keys). Checked once per request at the ASGI
entry (`FastPath`), which leaves the principal in the request's state for `tenant_of`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from starlette.types import Scope

from asyncfn.domain.errors import Forbidden, InvalidInput, Unauthorized
from asyncfn.domain.models import DEFAULT_TENANT
from asyncfn.domain.tenants import check_tenant_name
from asyncfn.engine import tokens
from asyncfn.engine.keys import KeyRing
from asyncfn.engine.tokens import TaskTokens

OPEN_PATHS = frozenset({"/", "/healthz", "/openapi.json", "/docs", "/docs/oauth2-redirect"})
OPEN_PREFIXES = ("/ui/",)
TENANT_HEADER = "x-asyncfn-tenant"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who calls: the tenant every read and write is scoped to, and whether it may manage
    tenants and keys (`admin`). `task_id` is set for a task token."""

    tenant: str
    kind: Literal["open", "key", "task", "admin"]
    admin: bool = False
    task_id: str | None = None


OPEN = Principal(DEFAULT_TENANT, "open")


class Authenticator:
    def __init__(self, keys: KeyRing, task_tokens: TaskTokens) -> None:
        self._keys = keys
        self._tokens = task_tokens

    async def principal(self, scope: Scope) -> Principal:
        """The caller of a request; Unauthorized when a credential is needed and missing or
        not valid."""
        path: str = scope.get("path", "")
        if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
            return OPEN
        headers = dict(scope.get("headers") or [])
        raw = headers.get(b"authorization")
        if raw is None:
            if not self._keys.enabled:
                return OPEN
            raise Unauthorized("this node needs an API key: Authorization: Bearer <key>")
        scheme, _, credential = raw.decode("latin-1").strip().partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            raise Unauthorized("the Authorization header is not 'Bearer <key>'")
        if credential.startswith(tokens.PREFIX):
            claims = await self._tokens.check(credential)
            return Principal(claims.tenant, "task", task_id=claims.task_id)
        if self._keys.is_admin(credential):
            return Principal(_acting_tenant(headers), "admin", admin=True)
        key = await self._keys.recognise(credential)
        if key is None:
            raise Unauthorized("the API key is not valid (unknown or revoked)")
        return Principal(key.tenant, "key")


def _acting_tenant(headers: dict[bytes, bytes]) -> str:
    """The admin acts in the default tenant, or in the one `X-Asyncfn-Tenant` names."""
    raw = headers.get(TENANT_HEADER.encode())
    if raw is None:
        return DEFAULT_TENANT
    name = raw.decode("latin-1").strip()
    try:
        check_tenant_name(name)
    except InvalidInput as exc:
        raise InvalidInput(exc.message, field="X-Asyncfn-Tenant") from None
    return name


def require_admin(principal: Principal, keys: KeyRing) -> None:
    """Tenant and key management needs the admin key (which must be configured)."""
    if keys.admin_key is None:
        raise Forbidden("managing tenants and keys needs an admin key: set ASYNCFN_ADMIN_KEY")
    if not principal.admin:
        raise Forbidden("managing tenants and keys needs the admin key")
