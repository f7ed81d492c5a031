"""The Store contract, part 7: tenants (the `default` one always there), API keys stored as
hashes and revoked once, and the shared secrets every node of a deployment reads alike.

Runs once per store implementation (see conftest.py). Times are explicit POSIX seconds.
"""

from __future__ import annotations

import pytest

from asyncfn.domain.tenants import ApiKey, key_hash
from asyncfn.store.base import Store

T0 = 1_700_000_000.0

pytestmark = pytest.mark.timeout(15)


def key(key_id: str, tenant: str, at: float = T0, name: str | None = None) -> ApiKey:
    return ApiKey(key_id, tenant, key_hash(f"afk_{key_id}_secret"), name, at)


async def test_tenants_are_created_once_and_listed_by_name(store: Store) -> None:
    assert [t.name for t in await store.list_tenants()] == ["default"]
    assert await store.create_tenant("zeta", T0) is True
    assert await store.create_tenant("acme", T0 + 1) is True
    assert await store.create_tenant("acme", T0 + 2) is False
    assert [t.name for t in await store.list_tenants()] == ["acme", "default", "zeta"]
    acme = await store.get_tenant("acme")
    assert acme is not None and acme.created_at == T0 + 1
    assert await store.get_tenant("ghost") is None


async def test_keys_are_found_by_hash_listed_per_tenant_and_revoked_once(store: Store) -> None:
    await store.create_tenant("acme", T0)
    await store.create_key(key("k1", "acme", T0, "ci"))
    await store.create_key(key("k2", "acme", T0 + 1))
    await store.create_key(key("k3", "default", T0 + 2))
    found = await store.find_key(key_hash("afk_k1_secret"))
    assert found is not None
    assert (found.id, found.tenant, found.name, found.active) == ("k1", "acme", "ci", True)
    assert await store.find_key(key_hash("afk_k1_other")) is None
    assert [k.id for k in await store.list_keys("acme")] == ["k1", "k2"]
    assert [k.id for k in await store.list_keys()] == ["k1", "k2", "k3"]
    assert await store.count_active_keys() == 3

    assert await store.revoke_key("k1", T0 + 10) is True
    assert await store.revoke_key("k1", T0 + 11) is False
    assert await store.revoke_key("nope", T0 + 11) is None
    revoked = await store.find_key(key_hash("afk_k1_secret"))
    assert revoked is not None and revoked.revoked_at == T0 + 10 and not revoked.active
    assert await store.count_active_keys() == 2


async def test_a_shared_secret_keeps_its_first_value(store: Store) -> None:
    first = await store.shared_secret("task-token", b"\x01" * 32, T0)
    assert first == b"\x01" * 32
    assert await store.shared_secret("task-token", b"\x02" * 32, T0 + 1) == b"\x01" * 32
    assert await store.shared_secret("other", b"\x03", T0) == b"\x03"
