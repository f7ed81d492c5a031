"""KeyRing: tenants and their API keys — making a key (shown once, stored as a hash), revoking
it, and recognising a presented key, with a short cache so the hot path does not read the store
per request. Whether auth is on at all is `enabled`: an admin key is set, or a key exists.
Signing keys of the cloud APIs (an access key id and secret, the secret sealed at rest by
`engine.sealing`) are made, revoked and looked up here too."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from asyncfn.domain import tenants
from asyncfn.domain.errors import Conflict, Forbidden, NotFound
from asyncfn.domain.tenants import ApiKey, SigningKey, Tenant
from asyncfn.engine.sealing import SecretBox
from asyncfn.store.base import Store

CACHE_S = 5.0
"""A presented key is looked up at most this often; a revocation made through another node is
seen within this long (at once on the node that made it)."""
CACHE_MAX = 10_000
SIGNING_ID_PREFIX = "AFSK"
SIGNING_ID_HEX = 16


@dataclass(frozen=True, slots=True)
class NewKey:
    """A key just made: `key` is the secret, shown this once and never again."""

    record: ApiKey
    key: str


@dataclass(frozen=True, slots=True)
class NewSigningKey:
    """A signing key just made: `secret` is shown this once (the store keeps it sealed)."""

    record: SigningKey
    secret: str


class KeyRing:
    name = "keys"

    def __init__(
        self,
        store: Store,
        *,
        admin_key: str | None,
        sealing_secret: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._box = SecretBox(sealing_secret) if sealing_secret else None
        self._signing_cache: dict[str, tuple[tuple[str, str] | None, float]] = {}
        self.admin_key = admin_key
        self._clock = clock
        self._active_keys = 0
        self._cache: dict[str, tuple[ApiKey | None, float]] = {}

    async def start(self) -> None:
        self._active_keys = await self._store.count_active_keys()

    async def stop(self) -> None:
        self._cache.clear()
        self._signing_cache.clear()

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
        """Revoke an API or signing key at once (NotFound when there is no such key; revoking
        twice is fine)."""
        now = self._clock()
        if (
            await self._store.revoke_key(key_id, now) is None
            and await self._store.revoke_signing_key(key_id, now) is None
        ):
            raise NotFound("key", key_id)
        self._cache.clear()
        self._signing_cache.clear()
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

    # -- signing keys (the cloud APIs) -------------------------------------------------------
    def _signing_store(self) -> tuple[Store, SecretBox]:
        if self._box is None:
            raise Forbidden(
                "signing keys need a server key to seal their secrets: set"
                " ASYNCFN_SIGNING_KEY_SECRET (at least 16 characters)"
            )
        return self._store, self._box

    async def create_signing_key(self, tenant: str, name: str | None = None) -> NewSigningKey:
        """A new signing key of `tenant`: an access key id and a secret shown once."""
        tenants.check_key_name(name)
        store, box = self._signing_store()
        if await self._store.get_tenant(tenant) is None:
            raise NotFound("tenant", tenant)
        key_id = SIGNING_ID_PREFIX + secrets.token_hex(SIGNING_ID_HEX // 2).upper()
        secret = secrets.token_urlsafe(30)
        record = SigningKey(key_id, tenant, box.seal(secret), name, self._clock())
        await store.create_signing_key(record)
        return NewSigningKey(record, secret)

    async def signing_keys(self, tenant: str | None = None) -> list[SigningKey]:
        return await self._store.list_signing_keys(tenant)

    async def signing_secret(self, key_id: str) -> tuple[str, str] | None:
        """(tenant, secret) of an active signing key, or None; cached like API keys."""
        if self._box is None:
            return None
        now = self._clock()
        cached = self._signing_cache.get(key_id)
        if cached is not None and cached[1] > now:
            return cached[0]
        key = await self._store.find_signing_key(key_id)
        secret = self._box.unseal(key.secret_sealed) if key is not None and key.active else None
        found = (key.tenant, secret) if key is not None and secret is not None else None
        if len(self._signing_cache) >= CACHE_MAX:
            self._signing_cache.clear()
        self._signing_cache[key_id] = (found, now + CACHE_S)
        return found

    def is_admin(self, presented: str) -> bool:
        return self.admin_key is not None and tenants.same_secret(presented, self.admin_key)
