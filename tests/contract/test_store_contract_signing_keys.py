"""The Store contract, signing keys: the cloud APIs' access keys, kept with their secret sealed
(the bytes are opaque to the store), found by access key id, listed per tenant and revoked
once."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest

from asyncfn.domain.tenants import SigningKey
from asyncfn.store.base import Store

T0 = 1_700_000_000.0

pytestmark = pytest.mark.timeout(15)


async def test_signing_keys_are_found_by_id_listed_and_revoked_once(store: Store) -> None:
    keys = store
    await store.create_tenant("acme", T0)
    await keys.create_signing_key(SigningKey("AFSK1", "acme", b"\x00sealed\xff", "ci", T0))
    await keys.create_signing_key(SigningKey("AFSK2", "default", b"other", None, T0 + 1))
    found = await keys.find_signing_key("AFSK1")
    assert found == SigningKey("AFSK1", "acme", b"\x00sealed\xff", "ci", T0)
    assert found.active
    assert await keys.find_signing_key("AFSK9") is None
    assert [k.id for k in await keys.list_signing_keys("acme")] == ["AFSK1"]
    assert [k.id for k in await keys.list_signing_keys()] == ["AFSK1", "AFSK2"]

    assert await keys.revoke_signing_key("AFSK1", T0 + 5) is True
    assert await keys.revoke_signing_key("AFSK1", T0 + 6) is False
    assert await keys.revoke_signing_key("AFSK9", T0 + 6) is None
    revoked = await keys.find_signing_key("AFSK1")
    assert revoked is not None and revoked.revoked_at == T0 + 5 and not revoked.active


async def test_a_signing_key_needs_an_existing_tenant(store: Store) -> None:
    keys = store
    with pytest.raises((sqlite3.IntegrityError, psycopg.errors.ForeignKeyViolation)):
        await keys.create_signing_key(SigningKey("AFSK3", "ghost", b"x", None, T0))
