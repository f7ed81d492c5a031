"""The store's tenants, API keys, signing keys and shared secrets."""

from __future__ import annotations

from typing import Protocol

from asyncfn.domain.tenants import ApiKey, SigningKey, Tenant


class TenantStore(Protocol):
    """Tenants and their quotas, API keys, signing keys and the deployment's shared secrets."""

    async def create_tenant(self, name: str, now: float) -> bool:
        """False when the tenant exists already (nothing changes). `default` always exists."""

    async def list_tenants(self) -> list[Tenant]:
        """Every tenant, by name."""

    async def get_tenant(self, name: str) -> Tenant | None:
        """The tenant with its quotas."""

    async def set_tenant_limits(
        self,
        name: str,
        max_running: int | None,
        submit_rate: float | None,
        submit_burst: int | None,
    ) -> Tenant | None:
        """Replace a tenant's quotas (None: unlimited); answers the tenant, or None when there
        is no such tenant (`default` always exists)."""

    async def create_key(self, key: ApiKey) -> None:
        """Store a new key (its hash; ids and hashes are unique)."""

    async def find_key(self, hash_: str) -> ApiKey | None:
        """The key whose hash is `hash_`, revoked or not."""

    async def list_keys(self, tenant: str | None = None) -> list[ApiKey]:
        """The keys of `tenant` (every tenant's when None), revoked ones too, oldest first."""

    async def revoke_key(self, key_id: str, now: float) -> bool | None:
        """Revoke a key; None when there is no such key, False when it was revoked already."""

    async def count_active_keys(self) -> int: ...

    # The cloud APIs' signing keys: their secrets come sealed by `engine.sealing`.
    async def create_signing_key(self, key: SigningKey) -> None: ...

    async def find_signing_key(self, key_id: str) -> SigningKey | None:
        """The key with access key id `key_id`, revoked or not."""

    async def list_signing_keys(self, tenant: str | None = None) -> list[SigningKey]:
        """The signing keys of `tenant` (every tenant's when None), oldest first."""

    async def revoke_signing_key(self, key_id: str, now: float) -> bool | None:
        """Revoke a key; None when there is no such key, False when it was revoked already."""

    async def shared_secret(self, name: str, candidate: bytes, now: float) -> bytes:
        """The secret called `name` that every node of the deployment shares: `candidate`
        becomes it when there is none yet, else the stored one is answered."""
