"""A node with auth on (admin key and signing-key secret set) and two tenants, each with an
API key and a signing key made through the native admin API: what the compat suites sign with."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.e2e.harness import Server, free_port

ADMIN = "admin-key-for-the-compat-suite-0123456789"
SEAL = "signing-key-secret-for-the-compat-suite"


@dataclass(frozen=True)
class TenantKeys:
    name: str
    http: httpx.Client
    """The native API as the tenant (its bearer key)."""
    access_key_id: str
    access_key_secret: str


def secured_server(tmp_path: Path) -> Server:
    env = {"ASYNCFN_ADMIN_KEY": ADMIN, "ASYNCFN_SIGNING_KEY_SECRET": SEAL}
    return Server(tmp_path / "data", free_port(), env=env).start()


def make_tenant(server: Server, name: str) -> TenantKeys:
    admin = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {ADMIN}"})
    with admin:
        assert admin.post("/v1/tenants", json={"name": name}).status_code == 201
        api = admin.post(f"/v1/tenants/{name}/keys", json={}).json()
        signing = admin.post(f"/v1/tenants/{name}/keys", json={"kind": "signing"})
        assert signing.status_code == 201, signing.text
    made = signing.json()
    http = httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {api['key']}"}, timeout=30
    )
    return TenantKeys(name, http, made["access_key_id"], made["access_key_secret"])


def two_tenants(tmp_path: Path) -> Iterator[tuple[Server, TenantKeys, TenantKeys]]:
    server = secured_server(tmp_path)
    made: list[TenantKeys] = []
    try:
        made = [make_tenant(server, "alpha"), make_tenant(server, "beta")]
        yield server, made[0], made[1]
    finally:
        for tenant in made:
            tenant.http.close()
        server.stop()
