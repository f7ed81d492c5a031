"""The PostgreSQL store's tenants, API keys (hashes only), signing keys (sealed secrets) and
the secrets nodes share."""

from __future__ import annotations

from collections.abc import Mapping

from asyncfn.domain.models import DEFAULT_TENANT
from asyncfn.domain.tenants import ApiKey, SigningKey, Tenant
from asyncfn.store.postgres.plumbing import PgPlumbing
from asyncfn.store.postgres.rows import Conn, execute, fetch_all, fetch_one
from asyncfn.store.sqlite.tenants import (
    key_from_row,
    limits_params,
    signing_key_from_row,
    signing_key_params,
    tenant_from_row,
)


class PgTenants:
    """Tenant, key and secret ops and reads over the named statements `q`."""

    def __init__(self, q: Mapping[str, str]) -> None:
        self.q = q

    async def create_tenant(self, conn: Conn, name: str, now: float) -> bool:
        return (
            await fetch_one(conn, self.q["create_tenant"], {"name": name, "now": now}) is not None
        )

    async def set_limits(
        self,
        conn: Conn,
        name: str,
        max_running: int | None,
        submit_rate: float | None,
        submit_burst: int | None,
    ) -> Tenant | None:
        """One statement, or two when `name` is the default tenant, whose row is created as
        needed (it always exists)."""
        if name == DEFAULT_TENANT:
            await execute(conn, self.q["create_tenant"], {"name": name, "now": 0.0})
        params = limits_params(name, max_running, submit_rate, submit_burst)
        row = await fetch_one(conn, self.q["set_tenant_limits"], params)
        return None if row is None else tenant_from_row(row)

    async def create_key(self, conn: Conn, key: ApiKey) -> None:
        params = {
            "id": key.id,
            "tenant": key.tenant,
            "hash": key.hash,
            "name": key.name,
            "now": key.created_at,
        }
        await execute(conn, self.q["create_key"], params)

    async def revoke_key(self, conn: Conn, key_id: str, now: float) -> bool | None:
        row = await fetch_one(conn, self.q["revoke_key"], {"id": key_id, "now": now})
        return None if row is None else bool(row[0])

    async def create_signing_key(self, conn: Conn, key: SigningKey) -> None:
        await execute(conn, self.q["create_signing_key"], signing_key_params(key))

    async def revoke_signing_key(self, conn: Conn, key_id: str, now: float) -> bool | None:
        if await fetch_one(conn, self.q["find_signing_key"], {"id": key_id}) is None:
            return None
        row = await fetch_one(conn, self.q["revoke_signing_key"], {"id": key_id, "now": now})
        return row is not None

    async def secret(self, conn: Conn, name: str, value: bytes, now: float) -> bytes:
        await execute(conn, self.q["keep_secret"], {"name": name, "value": value, "now": now})
        row = await fetch_one(conn, self.q["get_secret"], {"name": name})
        assert row is not None  # inserted or kept just above
        return bytes(row[0])

    async def tenants(self, conn: Conn) -> list[Tenant]:
        return [tenant_from_row(r) for r in await fetch_all(conn, self.q["list_tenants"])]

    async def tenant(self, conn: Conn, name: str) -> Tenant | None:
        row = await fetch_one(conn, self.q["get_tenant"], {"name": name})
        return None if row is None else tenant_from_row(row)

    async def find_key(self, conn: Conn, hash_: str) -> ApiKey | None:
        row = await fetch_one(conn, self.q["find_key"], {"hash": hash_})
        return None if row is None else key_from_row(row)

    async def keys(self, conn: Conn, tenant: str | None) -> list[ApiKey]:
        rows = await fetch_all(conn, self.q["list_keys"], {"tenant": tenant})
        return [key_from_row(r) for r in rows]

    async def find_signing_key(self, conn: Conn, key_id: str) -> SigningKey | None:
        row = await fetch_one(conn, self.q["find_signing_key"], {"id": key_id})
        return None if row is None else signing_key_from_row(row)

    async def signing_keys(self, conn: Conn, tenant: str | None) -> list[SigningKey]:
        rows = await fetch_all(conn, self.q["list_signing_keys"], {"tenant": tenant})
        return [signing_key_from_row(r) for r in rows]

    async def active_keys(self, conn: Conn) -> int:
        row = await fetch_one(conn, self.q["count_active_keys"])
        return 0 if row is None else int(row[0])


class PgTenantStore(PgPlumbing):
    """`PostgresStore`'s tenant, key and secret methods (the Store protocol's), kept here so the
    store's module does not grow."""

    _tenants: PgTenants

    async def create_tenant(self, name: str, now: float) -> bool:
        return await self._run(lambda c: self._tenants.create_tenant(c, name, now))

    async def list_tenants(self) -> list[Tenant]:
        return await self._run(self._tenants.tenants)

    async def get_tenant(self, name: str) -> Tenant | None:
        return await self._run(lambda c: self._tenants.tenant(c, name))

    async def set_tenant_limits(
        self,
        name: str,
        max_running: int | None,
        submit_rate: float | None,
        submit_burst: int | None,
    ) -> Tenant | None:
        limits = (max_running, submit_rate, submit_burst)
        return await self._run(lambda c: self._tenants.set_limits(c, name, *limits), True)

    async def create_key(self, key: ApiKey) -> None:
        await self._run(lambda c: self._tenants.create_key(c, key))

    async def find_key(self, hash_: str) -> ApiKey | None:
        return await self._run(lambda c: self._tenants.find_key(c, hash_))

    async def list_keys(self, tenant: str | None = None) -> list[ApiKey]:
        return await self._run(lambda c: self._tenants.keys(c, tenant))

    async def revoke_key(self, key_id: str, now: float) -> bool | None:
        return await self._run(lambda c: self._tenants.revoke_key(c, key_id, now))

    async def create_signing_key(self, key: SigningKey) -> None:
        await self._run(lambda c: self._tenants.create_signing_key(c, key))

    async def find_signing_key(self, key_id: str) -> SigningKey | None:
        return await self._run(lambda c: self._tenants.find_signing_key(c, key_id))

    async def list_signing_keys(self, tenant: str | None = None) -> list[SigningKey]:
        return await self._run(lambda c: self._tenants.signing_keys(c, tenant))

    async def revoke_signing_key(self, key_id: str, now: float) -> bool | None:
        return await self._run(lambda c: self._tenants.revoke_signing_key(c, key_id, now))

    async def count_active_keys(self) -> int:
        return await self._run(self._tenants.active_keys)

    async def shared_secret(self, name: str, candidate: bytes, now: float) -> bytes:
        return await self._run(lambda c: self._tenants.secret(c, name, candidate, now))
