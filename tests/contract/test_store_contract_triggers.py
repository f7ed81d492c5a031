"""The Store contract, part 6: triggers — CRUD keeping `created_at`, listing per tenant and
across tenants, and a function's queue depth (what a trigger's back-pressure reads).

Runs once per store implementation (see conftest.py). Times are explicit POSIX seconds.
"""

from __future__ import annotations

import dataclasses

import pytest

from asyncfn.domain.models import Submission
from asyncfn.domain.states import TaskStatus
from asyncfn.domain.triggers import Trigger
from asyncfn.store.base import Finish, Store

T0 = 1_700_000_000.0
TENANT = "acme"

pytestmark = pytest.mark.timeout(15)


def nats(name: str, **fields: object) -> Trigger:
    base = Trigger(
        name,
        "resize",
        "nats",
        tenant=TENANT,
        settings={"stream": "orders", "batch": 50, "servers": ["nats://127.0.0.1:4222"]},
        max_queue_depth=500,
        updated_at=T0,
    )
    return dataclasses.replace(base, **fields)  # type: ignore[arg-type]


async def test_put_creates_then_replaces_keeping_created_at(store: Store) -> None:
    assert await store.put_trigger(nats("orders")) is True
    changed = nats(
        "orders",
        type="redis-stream",
        settings={"stream": "jobs"},
        enabled=False,
        max_queue_depth=7,
        function="thumbs",
        updated_at=T0 + 5,
    )
    assert await store.put_trigger(changed) is False
    got = await store.get_trigger(TENANT, "orders")
    assert got is not None
    assert (got.type, got.function, got.enabled, got.max_queue_depth) == (
        "redis-stream",
        "thumbs",
        False,
        7,
    )
    assert dict(got.settings) == {"stream": "jobs"}
    assert (got.created_at, got.updated_at) == (T0, T0 + 5)


async def test_settings_round_trip_as_json(store: Store) -> None:
    await store.put_trigger(nats("orders"))
    got = await store.get_trigger(TENANT, "orders")
    assert got is not None
    assert dict(got.settings) == {
        "stream": "orders",
        "batch": 50,
        "servers": ["nats://127.0.0.1:4222"],
    }
    assert got.max_queue_depth == 500 and got.enabled is True


async def test_get_list_delete_scoped_by_tenant(store: Store) -> None:
    await store.put_trigger(nats("b"))
    await store.put_trigger(nats("a", type="directory", settings={"path": "/srv/in"}))
    await store.put_trigger(nats("c", tenant="other"))
    assert [t.name for t in await store.list_triggers(TENANT)] == ["a", "b"]
    everyone = await store.list_triggers(None)
    assert [(t.tenant, t.name) for t in everyone] == [("acme", "a"), ("acme", "b"), ("other", "c")]
    assert await store.get_trigger("other", "a") is None
    assert await store.delete_trigger(TENANT, "a") is True
    assert await store.delete_trigger(TENANT, "a") is False
    assert await store.get_trigger(TENANT, "a") is None
    assert [t.name for t in await store.list_triggers(TENANT)] == ["b"]


async def test_queue_depth_counts_waiting_tasks_of_one_function(store: Store) -> None:
    assert await store.queue_depth(TENANT, "resize") == 0
    subs = [Submission(b"x"), Submission(b"y", run_at=T0 + 3600), Submission(b"z")]
    await store.submit_many(TENANT, "resize", subs, T0, 3, 0)
    await store.submit_many(TENANT, "other", [Submission(b"o")], T0, 3, 0)
    await store.submit_many("elsewhere", "resize", [Submission(b"e")], T0, 3, 0)
    assert await store.queue_depth(TENANT, "resize") == 3
    (claimed,) = await store.claim_ready(TENANT, "resize", "n1", 1, T0 + 1, T0 + 60)
    assert await store.queue_depth(TENANT, "resize") == 2
    done = Finish(claimed.row, claimed.attempt, TaskStatus.SUCCEEDED, T0 + 2, result=1)
    assert await store.finish([done]) == [True]
    assert await store.queue_depth(TENANT, "resize") == 2
