"""Routes for tenant and API-key management (the admin key only): create and list tenants, set
their quotas, make a tenant's key (shown once), list keys (never the keys themselves), revoke
one."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from asyncfn.api.deps import admin_of, node_of
from asyncfn.api.render import json_response
from asyncfn.domain import limits
from asyncfn.domain.errors import NotFound
from asyncfn.domain.records import rfc3339
from asyncfn.domain.tenants import ApiKey, SigningKey, Tenant

router = APIRouter(tags=["tenants"])


class TenantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)


class TenantLimitsIn(BaseModel):
    """A tenant's quotas; each field given replaces the one stored, null lifts it."""

    model_config = ConfigDict(extra="forbid")
    max_running: int | None = Field(
        None,
        ge=limits.MAX_RUNNING[0],
        le=limits.MAX_RUNNING[1],
        description="running tasks of the tenant across the cluster; null: no cap",
    )
    submit_rate: float | None = Field(
        None,
        ge=limits.RATE_LIMIT[0],
        le=limits.RATE_LIMIT[1],
        description="API submissions per second (per node); over it the API answers 429",
    )
    submit_burst: int | None = Field(
        None,
        ge=limits.RATE_BURST[0],
        le=limits.RATE_BURST[1],
        description="submissions allowed at once; null: one second's worth",
    )


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=100, description="a label, e.g. who uses it")
    kind: Literal["api", "signing"] = Field(
        "api",
        description="api: a bearer key; signing: an access key id and secret for the cloud APIs"
        " (Lambda's SigV4, Function Compute's ACS3), which needs ASYNCFN_SIGNING_KEY_SECRET",
    )


def tenant_json(tenant: Tenant) -> dict[str, Any]:
    return {
        "name": tenant.name,
        "created_at": rfc3339(tenant.created_at),
        "max_running": tenant.max_running,
        "submit_rate": tenant.submit_rate,
        "submit_burst": tenant.submit_burst,
    }


def key_json(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "tenant": key.tenant,
        "name": key.name,
        "created_at": rfc3339(key.created_at),
        "revoked_at": rfc3339(key.revoked_at),
        "active": key.active,
        "kind": "api",
    }


def signing_key_json(key: SigningKey) -> dict[str, Any]:
    """A signing key as listed: its access key id, never the secret."""
    return {
        "id": key.id,
        "tenant": key.tenant,
        "name": key.name,
        "created_at": rfc3339(key.created_at),
        "revoked_at": rfc3339(key.revoked_at),
        "active": key.active,
        "kind": "signing",
    }


@router.post("/v1/tenants", status_code=201)
async def create_tenant(body: TenantIn, request: Request) -> Response:
    admin_of(request)
    tenant = await node_of(request).keys.create_tenant(body.name)
    return json_response(tenant_json(tenant), 201)


@router.get("/v1/tenants")
async def list_tenants(request: Request) -> Response:
    admin_of(request)
    found = await node_of(request).keys.tenants()
    return json_response({"items": [tenant_json(t) for t in found]})


@router.patch("/v1/tenants/{tenant}")
async def set_tenant_limits(tenant: str, body: TenantLimitsIn, request: Request) -> Response:
    """Change a tenant's quotas at runtime: they hold at once on this node, within seconds on
    the others. Fields left out keep their value; null lifts a quota."""
    admin_of(request)
    flow = node_of(request).flow
    current = flow.tenant(tenant) or await node_of(request).store.get_tenant(tenant)
    if current is None:
        raise NotFound("tenant", tenant)
    given = body.model_dump(exclude_unset=True)
    changed = await flow.set_tenant_limits(
        tenant,
        given.get("max_running", current.max_running),
        given.get("submit_rate", current.submit_rate),
        given.get("submit_burst", current.submit_burst),
    )
    return json_response(tenant_json(changed))


@router.post("/v1/tenants/{tenant}/keys", status_code=201)
async def create_key(tenant: str, request: Request, body: KeyIn | None = None) -> Response:
    """A new API key of `tenant`. The answer's `key` is the only time the key is shown."""
    admin_of(request)
    keys = node_of(request).keys
    name = body.name if body else None
    if body is not None and body.kind == "signing":
        signing = await keys.create_signing_key(tenant, name)
        answer = {
            **signing_key_json(signing.record),
            "access_key_id": signing.record.id,
            "access_key_secret": signing.secret,
        }
        return json_response(answer, 201)
    made = await keys.create_key(tenant, name)
    return json_response({**key_json(made.record), "key": made.key}, 201)


@router.get("/v1/keys")
async def list_keys(request: Request, tenant: str | None = Query(None)) -> Response:
    admin_of(request)
    keys = node_of(request).keys
    found = [key_json(k) for k in await keys.keys(tenant)]
    found += [signing_key_json(k) for k in await keys.signing_keys(tenant)]
    return json_response({"items": found})


@router.delete("/v1/keys/{key_id}", status_code=204)
async def revoke_key(key_id: str, request: Request) -> Response:
    """Revoke a key: it stops working at once on this node, within seconds on the others."""
    admin_of(request)
    await node_of(request).keys.revoke(key_id)
    return Response(status_code=204)
