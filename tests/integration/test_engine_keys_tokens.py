"""KeyRing and TaskTokens on a real SQLite store: keys are shown once and stored as hashes,
recognised until revoked, and auth turns on with the first key; task tokens are signed with a
secret every node shares, expire, and stop working once their task has ended."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from asyncfn.domain.errors import Conflict, InvalidInput, NotFound, Unauthorized
from asyncfn.domain.models import Submission
from asyncfn.domain.states import TaskStatus
from asyncfn.domain.tenants import key_hash
from asyncfn.engine.keys import KeyRing
from asyncfn.engine.tokens import TaskTokens
from asyncfn.store import open_store
from asyncfn.store.base import Finish, Store

pytestmark = pytest.mark.timeout(20)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'keys.db'}")
    await opened.open()
    yield opened
    await opened.close()


async def test_keys_turn_auth_on_are_recognised_and_revoked(store: Store) -> None:
    ring = KeyRing(store, admin_key=None)
    await ring.start()
    assert not ring.enabled
    with pytest.raises(NotFound):
        await ring.create_key("acme")
    await ring.create_tenant("acme")
    with pytest.raises(Conflict):
        await ring.create_tenant("acme")
    with pytest.raises(InvalidInput):
        await ring.create_tenant("no spaces")
    made = await ring.create_key("acme", "ci")
    assert ring.enabled
    assert made.key.startswith(f"afk_{made.record.id}_")
    assert made.record.hash == key_hash(made.key) and made.key not in made.record.hash
    found = await ring.recognise(made.key)
    assert found is not None and found.tenant == "acme"
    assert await ring.recognise(made.key + "x") is None
    await ring.revoke(made.record.id)
    assert await ring.recognise(made.key) is None  # at once, despite the cache
    assert not ring.enabled
    with pytest.raises(NotFound):
        await ring.revoke("nope")


async def test_the_admin_key_is_compared_whole(store: Store) -> None:
    ring = KeyRing(store, admin_key="a-long-admin-key-0123")
    assert ring.enabled and ring.is_admin("a-long-admin-key-0123")
    assert not ring.is_admin("a-long-admin-key-012") and not ring.is_admin("")


async def test_task_tokens_are_signed_expire_and_end_with_their_task(store: Store) -> None:
    tokens = TaskTokens(store)
    await tokens.start()
    other_node = TaskTokens(store)  # a second node of the same deployment
    await other_node.start()
    (sub,) = await store.submit_many("acme", "f", [Submission(b"")], time.time(), 1, 0)
    token = tokens.mint("acme", sub.task_id, time.time() + 60)
    claims = await other_node.check(token)
    assert (claims.tenant, claims.task_id) == ("acme", sub.task_id)

    tampered = token.replace("aft_", "aft_x", 1)
    with pytest.raises(Unauthorized):
        tokens.read(tampered)
    with pytest.raises(Unauthorized):
        tokens.read(token[:-2])
    expired = tokens.mint("acme", sub.task_id, time.time() - 3600)
    with pytest.raises(Unauthorized, match="expired"):
        tokens.read(expired)

    (claimed,) = await store.claim_ready("acme", "f", "n1", 1, time.time(), time.time() + 30)
    done = Finish(claimed.row, claimed.attempt, TaskStatus.SUCCEEDED, time.time(), result=1)
    assert await store.finish([done]) == [True]
    fresh = TaskTokens(store)  # no cache of the task being alive
    await fresh.start()
    with pytest.raises(Unauthorized, match="ended"):
        await fresh.check(token)
