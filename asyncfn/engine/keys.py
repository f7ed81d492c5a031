"""KeyRing: tenants and their API keys — making a key (shown once, stored as a hash), revoking
it, and recognising a presented key, with a short cache so the hot path does not read the store
per request. Whether auth is on at all is `enabled`: an admin key is set, or a key exists."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from asyncfn.domain import tenants
from asyncfn.domain.errors import Conflict, NotFound
from asyncfn.domain.tenants import ApiKey, Tenant
from asyncfn.store.base import Store

CACHE_S = 5.0
"""A presented key is looked up at most this often; a revocation made through another node is
seen within this long (at once on the node that made it)."""
CACHE_MAX = 10_000


@dataclass(frozen=True, slots=True)
class NewKey:
    """A key just made: `key` is the secret, shown this once and never again."""

    record: ApiKey
    key: str


class KeyRing:
    name = "keys"

    def __init__(
        self, store: Store, *, admin_key: str | None, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self.admin_key = admin_key
        self._clock = clock
        self._active_keys = 0
        self._cache: dict[str, tuple[ApiKey | None, float]] = {}

    async def start(self) -> None:
        self._active_keys = await self._store.count_active_keys()

    async def stop(self) -> None:
        self._cache.clear()

    @property
    def enabled(self) -> bool:
        """Requests need a credential: an admin key is configured or a tenant key exists."""
        return self.admin_key is not None or self._active_keys > 0

    # -- tenants -----------------------------------------------------------------------------
    async def create_tenant(self, name: str) -> Tenant:
        tenants.check_tenant_name(name)
        if not await self._store.create_tenant(name, self._clock()):
            raise Conflict(f"tenant {name!r} exists already", field="name")
        made = await self._store.get_tenant(name)
        assert made is not None
        return made

    async def tenants(self) -> list[Tenant]:
        return await self._store.list_tenants()

    # -- keys --------------------------------------------------------------------------------
    async def create_key(self, tenant: str, name: str | None = None) -> NewKey:
        """A new key of `tenant` (NotFound when there is no such tenant)."""
        tenants.check_key_name(name)
        if await self._store.get_tenant(tenant) is None:
            raise NotFound("tenant", tenant)
        key_id = secrets.token_hex(tenants.KEY_ID_CHARS // 2)
        key = tenants.make_key(key_id, secrets.token_urlsafe(32))
        record = ApiKey(key_id, tenant, tenants.key_hash(key), name, self._clock())
        await self._store.create_key(record)
        self._active_keys = await self._store.count_active_keys()
        return NewKey(record, key)

    async def keys(self, tenant: str | None = None) -> list[ApiKey]:
        if tenant is not None and await self._store.get_tenant(tenant) is None:
            raise NotFound("tenant", tenant)
        return await self._store.list_keys(tenant)

    async def revoke(self, key_id: str) -> None:
        """Revoke a key at once (NotFound when there is no such key; revoking twice is fine)."""
        if await self._store.revoke_key(key_id, self._clock()) is None:
            raise NotFound("key", key_id)
        self._cache.clear()
        self._active_keys = await self._store.count_active_keys()

    async def recognise(self, presented: str) -> ApiKey | None:
        """The active key `presented` is, or None (unknown or revoked)."""
        digest = tenants.key_hash(presented)
        now = self._clock()
        cached = self._cache.get(digest)
        if cached is not None and cached[1] > now:
            found = cached[0]
        else:
            found = await self._store.find_key(digest)
            if len(self._cache) >= CACHE_MAX:
                self._cache.clear()
            self._cache[digest] = (found, now + CACHE_S)
        return found if found is not None and found.active else None

    def is_admin(self, presented: str) -> bool:
        return self.admin_key is not None and tenants.same_secret(presented, self.admin_key)
