"""The deliverer on a real SQLite store: what a webhook receives, retries and dead deliveries,
and the runtime limits of function chains. HTTP goes to an httpx MockTransport."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from asyncfn.domain import limits
from asyncfn.domain.models import AsyncPolicy, Delivery, FunctionSpec, Submission
from asyncfn.domain.states import TaskStatus
from asyncfn.engine.catalog import FunctionCatalog
from asyncfn.engine.deliverer import Deliverer, signature
from asyncfn.engine.service import Supervisor
from asyncfn.engine.submitter import Submitter
from asyncfn.store import open_store
from asyncfn.store.base import Finish, Store

TENANT = "default"
NODE = "node-1"
URL = "http://receiver.test/hook"

pytestmark = pytest.mark.timeout(20)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'deliverer.db'}")
    await opened.open()
    yield opened
    await opened.close()


class Hooks:
    """The receiving side: answers each request with the next status of `answers` (then 200)."""

    def __init__(self, *answers: int) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.answers.pop(0) if self.answers else 200)


async def running_deliverer(
    store: Store, hooks: Hooks, *specs: FunctionSpec, poll_s: float = 0.02
) -> tuple[Deliverer, Submitter]:
    catalog = FunctionCatalog(store)
    for spec in specs:
        await catalog.put(spec)
    submitter = Submitter(store, catalog, lambda key, at: None)
    deliverer = Deliverer(
        store,
        submitter,
        Supervisor(),
        node=NODE,
        backoff_base_s=0.01,
        poll_s=poll_s,
        transport=httpx.MockTransport(hooks),
    )
    await deliverer.start()
    return deliverer, submitter


async def ended(store: Store, function: str, payload: bytes = b"{}") -> str:
    (sub,) = await store.submit_many(TENANT, function, [Submission(payload)], time.time(), 1, 0)
    (claimed,) = await store.claim_ready(TENANT, function, NODE, 1, time.time(), time.time() + 30)
    done = Finish(claimed.row, 1, TaskStatus.SUCCEEDED, time.time(), result={"ok": True})
    assert (await store.finish([done])) == [True]
    return sub.task_id


async def settled(store: Store, task_id: str, within_s: float = 10.0) -> Delivery:
    """The task's delivery once it is no longer pending. The budget is wall-clock time, well
    inside the test timeout, so a loaded machine gets this message rather than the timeout."""
    deadline = time.monotonic() + within_s
    while True:
        found = await store.task_deliveries(TENANT, task_id)
        if found and found[0].status != "pending":
            return found[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"the delivery of {task_id} is still pending: {found}")
        await asyncio.sleep(0.02)


def hooked(name: str, **destination: Any) -> FunctionSpec:
    policy = AsyncPolicy(on_success={"type": "http", "url": URL, "secret": "k", **destination})
    return FunctionSpec(name=name, handler="m:h", async_policy=policy)


def chained(name: str, target: str) -> FunctionSpec:
    policy = AsyncPolicy(on_success={"type": "function", "function": target})
    return FunctionSpec(name=name, handler="m:h", async_policy=policy)


async def test_the_webhook_gets_the_signed_record_after_retries(store: Store) -> None:
    hooks = Hooks(500, 503)
    deliverer, _ = await running_deliverer(store, hooks, hooked("f"))
    try:
        task_id = await ended(store, "f")
        delivery = await settled(store, task_id)
    finally:
        await deliverer.stop()
    assert (delivery.status, delivery.attempts) == ("delivered", 3)
    assert len(hooks.requests) == 3
    last = hooks.requests[-1]
    assert {r.headers["X-Asyncfn-Delivery"] for r in hooks.requests} == {delivery.id}
    timestamp = int(last.headers["X-Asyncfn-Timestamp"])
    assert last.headers["X-Asyncfn-Signature"] == signature("k", timestamp, last.content)
    record = orjson.loads(last.content)
    assert (record["id"], record["status"], record["result"]) == (
        task_id,
        "Succeeded",
        {"ok": True},
    )


async def test_a_chain_past_the_depth_limit_is_dead(store: Store) -> None:
    deliverer, _ = await running_deliverer(store, Hooks(), chained("a", "b"))
    try:
        deep = orjson.dumps({"chain_depth": limits.CHAIN_DEPTH_MAX})
        task_id = await ended(store, "a", deep)
        delivery = await settled(store, task_id)
    finally:
        await deliverer.stop()
    assert delivery.status == "dead"
    assert delivery.last_error is not None
    assert f"chain depth limit ({limits.CHAIN_DEPTH_MAX}) exceeded" in delivery.last_error


async def test_a_chain_to_a_missing_function_is_dead(store: Store) -> None:
    deliverer, _ = await running_deliverer(store, Hooks(), chained("a", "gone"))
    try:
        task_id = await ended(store, "a")
        delivery = await settled(store, task_id)
    finally:
        await deliverer.stop()
    assert (delivery.status, delivery.attempts) == ("dead", 1)
    assert delivery.last_error == "function 'gone' does not exist"


@pytest.mark.parametrize("turns", [0, 1, 2])
async def test_stop_in_the_turn_of_a_wake_up_stops_the_loop(store: Store, turns: int) -> None:
    """`stop()` cancels the loop right after the last delivery's end woke it. With the wake-up
    waited for by `asyncio.wait_for` (Python 3.11), a cancellation landing in the same loop turn
    as the wake-up was swallowed, the loop kept polling and `stop()` never returned."""
    deliverer, _ = await running_deliverer(store, Hooks(), poll_s=60.0)
    await asyncio.sleep(0.2)  # the loop has claimed nothing and waits for a wake-up
    deliverer.wake()
    for _ in range(turns):
        await asyncio.sleep(0)
    async with asyncio.timeout(5):
        await deliverer.stop()
