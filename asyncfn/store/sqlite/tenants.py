"""The SQLite store's tenants, API keys (hashes only), signing keys (sealed secrets) and
shared secrets."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from functools import partial
from typing import Any

from asyncfn.domain.models import DEFAULT_TENANT
from asyncfn.domain.tenants import ApiKey, SigningKey, Tenant
from asyncfn.store.sqlite.plumbing import SqlitePlumbing

Connection = sqlite3.Connection


def key_from_row(row: tuple[Any, ...]) -> ApiKey:
    """From the 6 columns `find_key` selects."""
    key_id, tenant, hash_, name, created_at, revoked_at = row
    return ApiKey(
        id=key_id,
        tenant=tenant,
        hash=hash_,
        name=name,
        created_at=float(created_at),
        revoked_at=None if revoked_at is None else float(revoked_at),
    )


def signing_key_from_row(row: tuple[Any, ...]) -> SigningKey:
    """From the 6 columns `find_signing_key` selects."""
    key_id, tenant, sealed, name, created_at, revoked_at = row
    return SigningKey(
        id=key_id,
        tenant=tenant,
        secret_sealed=bytes(sealed),
        name=name,
        created_at=float(created_at),
        revoked_at=None if revoked_at is None else float(revoked_at),
    )


def signing_key_params(key: SigningKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "tenant": key.tenant,
        "secret_sealed": key.secret_sealed,
        "name": key.name,
        "now": key.created_at,
    }


def tenant_from_row(row: tuple[Any, ...]) -> Tenant:
    """From the 5 columns `get_tenant` selects."""
    name, created_at, max_running, submit_rate, submit_burst = row
    return Tenant(
        name=name,
        created_at=float(created_at),
        max_running=None if max_running is None else int(max_running),
        submit_rate=None if submit_rate is None else float(submit_rate),
        submit_burst=None if submit_burst is None else int(submit_burst),
    )


def limits_params(
    name: str, max_running: int | None, submit_rate: float | None, submit_burst: int | None
) -> dict[str, Any]:
    return {
        "name": name,
        "max_running": max_running,
        "submit_rate": submit_rate,
        "submit_burst": submit_burst,
    }


class SqliteTenants:
    """Tenant, key and secret ops and reads over the named statements `q`."""

    def __init__(self, q: Mapping[str, str]) -> None:
        self.q = q

    # -- writes (on the writer's connection) -----------------------------------------------
    def create_tenant(self, conn: Connection, name: str, now: float) -> bool:
        return (
            conn.execute(self.q["create_tenant"], {"name": name, "now": now}).fetchone() is not None
        )

    def set_limits(
        self,
        conn: Connection,
        name: str,
        max_running: int | None,
        submit_rate: float | None,
        submit_burst: int | None,
    ) -> Tenant | None:
        if name == DEFAULT_TENANT:  # always exists: its row too, whatever happened to it
            conn.execute(self.q["create_tenant"], {"name": name, "now": 0.0}).fetchall()
        params = limits_params(name, max_running, submit_rate, submit_burst)
        row = conn.execute(self.q["set_tenant_limits"], params).fetchone()
        return None if row is None else tenant_from_row(row)

    def create_key(self, conn: Connection, key: ApiKey) -> None:
        params = {
            "id": key.id,
            "tenant": key.tenant,
            "hash": key.hash,
            "name": key.name,
            "now": key.created_at,
        }
        conn.execute(self.q["create_key"], params)

    def revoke_key(self, conn: Connection, key_id: str, now: float) -> bool | None:
        if conn.execute(self.q["key_exists"], {"id": key_id}).fetchone() is None:
            return None
        return conn.execute(self.q["revoke_key"], {"id": key_id, "now": now}).fetchone() is not None

    def create_signing_key(self, conn: Connection, key: SigningKey) -> None:
        conn.execute(self.q["create_signing_key"], signing_key_params(key))

    def revoke_signing_key(self, conn: Connection, key_id: str, now: float) -> bool | None:
        if conn.execute(self.q["find_signing_key"], {"id": key_id}).fetchone() is None:
            return None
        row = conn.execute(self.q["revoke_signing_key"], {"id": key_id, "now": now}).fetchone()
        return row is not None

    def secret(self, conn: Connection, name: str, value: bytes, now: float) -> bytes:
        conn.execute(self.q["keep_secret"], {"name": name, "value": value, "now": now})
        (kept,) = conn.execute(self.q["get_secret"], {"name": name}).fetchone()
        return bytes(kept)

    # -- reads (on a reader's connection) --------------------------------------------------
    def tenants(self, conn: Connection) -> list[Tenant]:
        return [tenant_from_row(r) for r in conn.execute(self.q["list_tenants"]).fetchall()]

    def tenant(self, conn: Connection, name: str) -> Tenant | None:
        row = conn.execute(self.q["get_tenant"], {"name": name}).fetchone()
        return None if row is None else tenant_from_row(row)

    def find_key(self, conn: Connection, hash_: str) -> ApiKey | None:
        row = conn.execute(self.q["find_key"], {"hash": hash_}).fetchone()
        return None if row is None else key_from_row(row)

    def keys(self, conn: Connection, tenant: str | None) -> list[ApiKey]:
        rows = conn.execute(self.q["list_keys"], {"tenant": tenant}).fetchall()
        return [key_from_row(r) for r in rows]

    def find_signing_key(self, conn: Connection, key_id: str) -> SigningKey | None:
        row = conn.execute(self.q["find_signing_key"], {"id": key_id}).fetchone()
        return None if row is None else signing_key_from_row(row)

    def signing_keys(self, conn: Connection, tenant: str | None) -> list[SigningKey]:
        rows = conn.execute(self.q["list_signing_keys"], {"tenant": tenant}).fetchall()
        return [signing_key_from_row(r) for r in rows]

    def active_keys(self, conn: Connection) -> int:
        (count,) = conn.execute(self.q["count_active_keys"]).fetchone()
        return int(count)


class SqliteTenantStore(SqlitePlumbing):
    """`SqliteStore`'s tenant, key and secret methods (the Store protocol's), kept here so the
    store's module does not grow; they run on its writer and readers like the rest."""

    _tenants: SqliteTenants

    async def create_tenant(self, name: str, now: float) -> bool:
        return await self._write(partial(self._tenants.create_tenant, name=name, now=now))

    async def list_tenants(self) -> list[Tenant]:
        return await self._read(self._tenants.tenants)

    async def get_tenant(self, name: str) -> Tenant | None:
        return await self._read(partial(self._tenants.tenant, name=name))

    async def set_tenant_limits(
        self,
        name: str,
        max_running: int | None,
        submit_rate: float | None,
        submit_burst: int | None,
    ) -> Tenant | None:
        limits = (max_running, submit_rate, submit_burst)
        return await self._write(lambda c: self._tenants.set_limits(c, name, *limits))

    async def create_key(self, key: ApiKey) -> None:
        await self._write(partial(self._tenants.create_key, key=key))

    async def find_key(self, hash_: str) -> ApiKey | None:
        return await self._read(partial(self._tenants.find_key, hash_=hash_))

    async def list_keys(self, tenant: str | None = None) -> list[ApiKey]:
        return await self._read(partial(self._tenants.keys, tenant=tenant))

    async def revoke_key(self, key_id: str, now: float) -> bool | None:
        return await self._write(partial(self._tenants.revoke_key, key_id=key_id, now=now))

    async def count_active_keys(self) -> int:
        return await self._read(self._tenants.active_keys)

    async def create_signing_key(self, key: SigningKey) -> None:
        await self._write(partial(self._tenants.create_signing_key, key=key))

    async def find_signing_key(self, key_id: str) -> SigningKey | None:
        return await self._read(partial(self._tenants.find_signing_key, key_id=key_id))

    async def list_signing_keys(self, tenant: str | None = None) -> list[SigningKey]:
        return await self._read(partial(self._tenants.signing_keys, tenant=tenant))

    async def revoke_signing_key(self, key_id: str, now: float) -> bool | None:
        return await self._write(partial(self._tenants.revoke_signing_key, key_id=key_id, now=now))

    async def shared_secret(self, name: str, candidate: bytes, now: float) -> bytes:
        op = partial(self._tenants.secret, name=name, value=candidate, now=now)
        return await self._write(op)
