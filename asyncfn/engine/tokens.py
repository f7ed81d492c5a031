"""TaskTokens: the short-lived credentials a running handler gets (`context.client`), scoped to
its task's tenant and valid while the task lives — never the creator's key.

A token is `aft_<claims>.<mac>`: base64url JSON claims (tenant, task id, expiry) and an
HMAC-SHA256 over them with a secret every node of the deployment shares (kept in the store), so
any node accepts a token any node made. `check` also refuses a token whose task has ended.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from asyncfn.domain.errors import Unauthorized
from asyncfn.store.base import Store

PREFIX = "aft_"
SECRET_NAME = "task-token-hmac"
GRACE_S = 300.0
"""A token outlives its attempt's deadline by this much (a retry gets a fresh one)."""
LIVE_CACHE_S = 1.0


@dataclass(frozen=True, slots=True)
class TaskClaims:
    tenant: str
    task_id: str
    expires_at: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TaskTokens:
    name = "tokens"

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock
        self._secret: bytes | None = None
        self._live: dict[tuple[str, str], float] = {}

    async def start(self) -> None:
        candidate = secrets.token_bytes(32)
        self._secret = await self._store.shared_secret(SECRET_NAME, candidate, self._clock())

    async def stop(self) -> None:
        self._live.clear()

    def mint(self, tenant: str, task_id: str, deadline: float) -> str:
        """A token for one attempt of a task, valid until `deadline` + GRACE_S."""
        claims = {"t": tenant, "k": task_id, "e": round(deadline + GRACE_S, 3)}
        body = _b64(orjson.dumps(claims))
        return f"{PREFIX}{body}.{_b64(self._mac(body))}"

    def read(self, token: str) -> TaskClaims:
        """The claims of a well-signed, unexpired token; Unauthorized otherwise."""
        body, dot, mac = token.removeprefix(PREFIX).partition(".")
        try:
            valid = bool(dot) and hmac.compare_digest(_unb64(mac), self._mac(body))
            claims = orjson.loads(_unb64(body)) if valid else None
        except (ValueError, orjson.JSONDecodeError):
            claims = None
        if not isinstance(claims, dict) or not {"t", "k", "e"} <= claims.keys():
            raise Unauthorized("the task token is not valid")
        parsed = TaskClaims(str(claims["t"]), str(claims["k"]), float(claims["e"]))
        if parsed.expires_at < self._clock():
            raise Unauthorized("the task token has expired")
        return parsed

    async def check(self, token: str) -> TaskClaims:
        """`read`, and the task must not have ended (Unauthorized once it has)."""
        claims = self.read(token)
        key = (claims.tenant, claims.task_id)
        now = self._clock()
        if self._live.get(key, 0.0) > now:
            return claims
        task = await self._store.get_task(claims.tenant, claims.task_id)
        if task is None or task.status.terminal:
            raise Unauthorized("the task token's task has ended")
        if len(self._live) > 10_000:
            self._live.clear()
        self._live[key] = now + LIVE_CACHE_S
        return claims

    def _mac(self, body: str) -> bytes:
        if self._secret is None:
            raise RuntimeError("TaskTokens.start() has not run")
        return hmac.new(self._secret, body.encode(), hashlib.sha256).digest()
