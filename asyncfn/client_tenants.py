"""The client's tenant and API-key calls (the admin key): tenants, their quotas, keys."""

from __future__ import annotations

from enum import Enum
from typing import Any, Final

from asyncfn import client_calls as calls
from asyncfn.client_drivers import AsyncDriver, SyncDriver


def _create_tenant(name: str) -> calls.Call[dict[str, Any]]:
    return calls.Call("POST", "/v1/tenants", calls.json_of, json={"name": name})


class Unset(Enum):
    """The type of `UNSET`: a quota argument not given (None means "lift the quota")."""

    UNSET = "unset"


UNSET: Final = Unset.UNSET


def _set_tenant_limits(
    tenant: str,
    max_running: int | Unset | None,
    submit_rate: float | Unset | None,
    submit_burst: int | Unset | None,
) -> calls.Call[dict[str, Any]]:
    """`PATCH /v1/tenants/{tenant}` with only the quotas given (None sent as null: lifted)."""
    given = {"max_running": max_running, "submit_rate": submit_rate, "submit_burst": submit_burst}
    body = {key: value for key, value in given.items() if value is not UNSET}
    return calls.Call("PATCH", f"/v1/tenants/{calls.segment(tenant)}", calls.json_of, json=body)


def _create_key(tenant: str, name: str | None, kind: str) -> calls.Call[dict[str, Any]]:
    """`POST /v1/tenants/{tenant}/keys`; the answer's `key` (an API key) or
    `access_key_secret` (a signing key) is shown this once."""
    body: dict[str, Any] = {"name": name} if name is not None else {}
    if kind != "api":
        body["kind"] = kind
    return calls.Call("POST", f"/v1/tenants/{calls.segment(tenant)}/keys", calls.json_of, json=body)


def _revoke_key(key_id: str) -> calls.Call[None]:
    return calls.Call("DELETE", f"/v1/keys/{calls.segment(key_id)}", calls.nothing_of)


class TenantsApi(SyncDriver):
    """`Client`'s tenant and key methods (the admin key)."""

    def create_tenant(self, name: str) -> dict[str, Any]:
        return self._run(_create_tenant(name))

    def list_tenants(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self._run(calls.get("/v1/tenants"))["items"]
        return items

    def set_tenant_limits(
        self,
        tenant: str,
        *,
        max_running: int | Unset | None = UNSET,
        submit_rate: float | Unset | None = UNSET,
        submit_burst: int | Unset | None = UNSET,
    ) -> dict[str, Any]:
        """Change a tenant's quotas; answers the tenant with all of them. A quota not given
        keeps its value; None lifts it. Over `submit_rate` submissions raise RateLimited."""
        return self._run(_set_tenant_limits(tenant, max_running, submit_rate, submit_burst))

    def create_key(self, tenant: str, name: str | None = None, kind: str = "api") -> dict[str, Any]:
        """A new API key of `tenant` (its `key` is in this answer only), or with kind
        "signing" an access key id and secret for the cloud APIs."""
        return self._run(_create_key(tenant, name, kind))

    def list_keys(self, tenant: str | None = None) -> list[dict[str, Any]]:
        params = {"tenant": tenant} if tenant is not None else None
        items: list[dict[str, Any]] = self._run(calls.get("/v1/keys", params))["items"]
        return items

    def revoke_key(self, key_id: str) -> None:
        self._run(_revoke_key(key_id))


class AsyncTenantsApi(AsyncDriver):
    """`AsyncClient`'s tenant and key methods (the admin key)."""

    async def create_tenant(self, name: str) -> dict[str, Any]:
        return await self._run(_create_tenant(name))

    async def list_tenants(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = (await self._run(calls.get("/v1/tenants")))["items"]
        return items

    async def set_tenant_limits(
        self,
        tenant: str,
        *,
        max_running: int | Unset | None = UNSET,
        submit_rate: float | Unset | None = UNSET,
        submit_burst: int | Unset | None = UNSET,
    ) -> dict[str, Any]:
        call = _set_tenant_limits(tenant, max_running, submit_rate, submit_burst)
        return await self._run(call)

    async def create_key(
        self, tenant: str, name: str | None = None, kind: str = "api"
    ) -> dict[str, Any]:
        return await self._run(_create_key(tenant, name, kind))

    async def list_keys(self, tenant: str | None = None) -> list[dict[str, Any]]:
        params = {"tenant": tenant} if tenant is not None else None
        items: list[dict[str, Any]] = (await self._run(calls.get("/v1/keys", params)))["items"]
        return items

    async def revoke_key(self, key_id: str) -> None:
        await self._run(_revoke_key(key_id))
