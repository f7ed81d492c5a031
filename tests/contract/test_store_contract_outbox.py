"""The Store contract, part 4: the destination outbox. Every terminal transition writes the
deliveries its function's policy asks for in its own transaction (and none for other statuses);
deliveries are claimed with a lease, then delivered, retried or dead.

Runs once per store implementation (see conftest.py). Times are explicit POSIX seconds.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Awaitable, Callable

import pytest

from asyncfn.domain.models import AsyncPolicy, Delivery, FunctionSpec, Submission, Task
from asyncfn.domain.states import TaskStatus
from asyncfn.store.base import Finish, Store
from asyncfn.store.sqlite.store import SqliteStore

S = TaskStatus
T0 = 1_700_000_000.0
TENANT = "acme"
FN = "resize"
NODE = "node-a"
HOOK = {"type": "http", "url": "http://127.0.0.1:9/hook", "secret": "k"}
AFTER = {
    "type": "function",
    "function": "after",
    "statuses": ["Failed", "Expired", "Stopped", "Invalid"],
}
EVERY_ENDING = AsyncPolicy(on_success=HOOK, on_failure=AFTER)

pytestmark = pytest.mark.timeout(15)


async def deploy(store: Store, policy: AsyncPolicy) -> None:
    await store.put_function(
        FunctionSpec(name=FN, tenant=TENANT, handler="main:handler", async_policy=policy)
    )


async def submit(store: Store, task_id: str = "t1") -> None:
    await store.submit_many(TENANT, FN, [Submission(b"{}", task_id=task_id)], T0, 3, 0)


async def task(store: Store, task_id: str = "t1") -> Task:
    found = await store.get_task(TENANT, task_id)
    assert found is not None
    return found


async def finished(store: Store, status: TaskStatus) -> None:
    await submit(store)
    (claimed,) = await store.claim_ready(TENANT, FN, NODE, 1, T0 + 1, T0 + 31)
    error = None if status is S.SUCCEEDED else {"type": "ValueError", "message": "bad"}
    (ok,) = await store.finish([Finish(claimed.row, 1, status, T0 + 2, error=error)])
    assert ok


async def succeeded(store: Store) -> None:
    await finished(store, S.SUCCEEDED)


async def failed(store: Store) -> None:
    await finished(store, S.FAILED)


async def stopped_running(store: Store) -> None:
    await submit(store)
    (claimed,) = await store.claim_ready(TENANT, FN, NODE, 1, T0 + 1, T0 + 31)
    ctl = await store.stop(TENANT, "t1", T0 + 2, None)
    assert ctl is not None and ctl.status is S.STOPPING
    (ok,) = await store.finish([Finish(claimed.row, 1, S.STOPPED, T0 + 3)])
    assert ok


async def stopped_waiting(store: Store) -> None:
    await submit(store)
    ctl = await store.stop(TENANT, "t1", T0 + 2, None)
    assert ctl is not None and ctl.status is S.STOPPED


async def expired(store: Store) -> None:
    await submit(store)
    assert await store.expire(TENANT, FN, T0 + 1, T0 + 2, 10) == 1


async def invalidated(store: Store) -> None:
    await submit(store)
    assert await store.delete_function(TENANT, FN, T0 + 2) == 1


PATHS: dict[str, tuple[Callable[[Store], Awaitable[None]], TaskStatus]] = {
    "finish-succeeded": (succeeded, S.SUCCEEDED),
    "finish-failed": (failed, S.FAILED),
    "finish-stopped": (stopped_running, S.STOPPED),
    "stop-waiting": (stopped_waiting, S.STOPPED),
    "expire": (expired, S.EXPIRED),
    "delete-function": (invalidated, S.INVALID),
}


async def deliveries(store: Store, task_id: str = "t1") -> list[Delivery]:
    found = await store.task_deliveries(TENANT, task_id)
    assert found is not None
    return found


@pytest.mark.parametrize("path", sorted(PATHS))
async def test_each_terminal_transition_writes_the_deliveries_its_policy_asks_for(
    store: Store, path: str
) -> None:
    end, status = PATHS[path]
    await deploy(store, EVERY_ENDING)
    await end(store)
    ended = await task(store)
    assert ended.status is status
    (delivery,) = await deliveries(store)
    expected = ("http", HOOK["url"]) if status is S.SUCCEEDED else ("function", "after")
    assert (delivery.destination.type, delivery.destination.target) == expected
    assert (delivery.status, delivery.attempts, delivery.row) == ("pending", 0, ended.row)
    assert (delivery.tenant, delivery.task_id, delivery.function) == (TENANT, "t1", FN)
    assert delivery.next_at == delivery.created_at == ended.finished_at
    assert ended.deliveries == (delivery,)


@pytest.mark.parametrize("path", sorted(PATHS))
async def test_no_delivery_for_an_ending_the_policy_does_not_ask_for(
    store: Store, path: str
) -> None:
    end, status = PATHS[path]
    # on_success by default is for Succeeded only; on_failure for Failed and Expired only.
    only_other = (
        AsyncPolicy(on_failure=HOOK)
        if status is S.SUCCEEDED
        else AsyncPolicy(on_success=HOOK, on_failure={**HOOK, "statuses": ["Succeeded"]})
    )
    await deploy(store, only_other)
    await end(store)
    assert (await task(store)).status is status
    assert await deliveries(store) == []


@pytest.mark.parametrize("path", sorted(PATHS))
async def test_the_deliveries_are_written_in_the_transition_s_own_transaction(
    store: Store, path: str
) -> None:
    if not isinstance(store, SqliteStore):
        pytest.skip("makes the outbox insert fail with an SQLite trigger")
    end, _ = PATHS[path]
    await deploy(store, EVERY_ENDING)
    with contextlib.closing(sqlite3.connect(store.path, isolation_level=None)) as conn:
        conn.execute(
            "CREATE TRIGGER outbox_down BEFORE INSERT ON deliveries"
            " BEGIN SELECT RAISE(ABORT, 'outbox down'); END"
        )
    with pytest.raises(sqlite3.IntegrityError, match="outbox down"):
        await end(store)
    left = await task(store)
    assert not left.status.terminal  # the transition went with its delivery
    assert left.finished_at is None
    assert await deliveries(store) == []
    assert left.events[-1].status not in {s.value for s in S if s.terminal}


async def test_a_function_without_destinations_owes_nothing(store: Store) -> None:
    await deploy(store, AsyncPolicy())
    await failed(store)
    assert await deliveries(store) == []
    assert await store.claim_deliveries(NODE, T0 + 100, T0 + 130, 10) == []


async def test_an_ending_matching_both_destinations_owes_both(store: Store) -> None:
    both = {**AFTER, "statuses": ["Failed"]}
    await deploy(store, AsyncPolicy(on_success={**HOOK, "statuses": ["Failed"]}, on_failure=both))
    await failed(store)
    found = await deliveries(store)
    assert sorted(d.destination.type for d in found) == ["function", "http"]
    assert len({d.id for d in found}) == 2


# -- claim, lease, done, failed, dead --------------------------------------------------------


async def one_pending(store: Store) -> Delivery:
    await deploy(store, EVERY_ENDING)
    await succeeded(store)
    (delivery,) = await deliveries(store)
    return delivery


async def test_a_claim_leases_a_due_delivery_and_counts_an_attempt(store: Store) -> None:
    pending = await one_pending(store)
    assert await store.claim_deliveries(NODE, pending.next_at - 1, T0 + 100, 10) == []
    (claimed,) = await store.claim_deliveries(NODE, T0 + 10, T0 + 70, 10)
    assert (claimed.id, claimed.attempts, claimed.status) == (pending.id, 1, "pending")
    assert claimed.destination.secret == "k"  # the deliverer signs with it
    assert await store.claim_deliveries("node-b", T0 + 69, T0 + 129, 10) == []


async def test_an_expired_lease_is_claimed_again_under_the_same_id(store: Store) -> None:
    pending = await one_pending(store)
    (first,) = await store.claim_deliveries(NODE, T0 + 10, T0 + 70, 10)
    (again,) = await store.claim_deliveries("node-b", T0 + 70, T0 + 130, 10)
    assert (again.id, again.attempts) == (pending.id, 2)
    # the first claim's late answer is refused: attempt 2 owns the delivery now
    assert not await store.delivery_done(first.id, first.attempts, T0 + 71)
    assert await store.delivery_done(again.id, again.attempts, T0 + 72)


async def test_a_done_delivery_is_delivered_and_never_claimed_again(store: Store) -> None:
    await one_pending(store)
    (claimed,) = await store.claim_deliveries(NODE, T0 + 10, T0 + 70, 10)
    assert await store.delivery_done(claimed.id, 1, T0 + 11)
    assert not await store.delivery_done(claimed.id, 1, T0 + 12)
    (done,) = await deliveries(store)
    assert (done.status, done.attempts, done.delivered_at, done.last_error) == (
        "delivered",
        1,
        T0 + 11,
        None,
    )
    assert await store.claim_deliveries(NODE, T0 + 1_000, T0 + 1_060, 10) == []


async def test_a_failed_attempt_waits_for_next_at_with_its_error(store: Store) -> None:
    await one_pending(store)
    (claimed,) = await store.claim_deliveries(NODE, T0 + 10, T0 + 70, 10)
    assert await store.delivery_failed(claimed.id, 1, T0 + 11, "HTTP 500", T0 + 12)
    (waiting,) = await deliveries(store)
    assert (waiting.status, waiting.next_at, waiting.last_error) == ("pending", T0 + 12, "HTTP 500")
    assert await store.claim_deliveries(NODE, T0 + 11.5, T0 + 71, 10) == []
    (retried,) = await store.claim_deliveries(NODE, T0 + 12, T0 + 72, 10)  # lease released
    assert (retried.id, retried.attempts) == (claimed.id, 2)


async def test_a_failure_without_next_at_is_dead(store: Store) -> None:
    await one_pending(store)
    (claimed,) = await store.claim_deliveries(NODE, T0 + 10, T0 + 70, 10)
    assert await store.delivery_failed(claimed.id, 1, T0 + 11, "function 'after' is gone", None)
    (dead,) = await deliveries(store)
    assert (dead.status, dead.last_error, dead.delivered_at) == (
        "dead",
        "function 'after' is gone",
        None,
    )
    assert await store.claim_deliveries(NODE, T0 + 1_000, T0 + 1_060, 10) == []
    assert not await store.delivery_failed(claimed.id, 1, T0 + 12, "again", T0 + 13)


async def test_claims_take_the_oldest_due_first_up_to_the_limit(store: Store) -> None:
    await deploy(store, EVERY_ENDING)
    for n, task_id in enumerate(["a", "b", "c"]):
        await store.submit_many(TENANT, FN, [Submission(b"", task_id=task_id)], T0, 3, 0)
        (claimed,) = await store.claim_ready(TENANT, FN, NODE, 1, T0 + 1, T0 + 31)
        await store.finish([Finish(claimed.row, 1, S.SUCCEEDED, T0 + 10 - n)])
    first = await store.claim_deliveries(NODE, T0 + 20, T0 + 80, 2)
    assert [d.task_id for d in first] == ["c", "b"]
    (last,) = await store.claim_deliveries(NODE, T0 + 20, T0 + 80, 2)
    assert last.task_id == "a"


async def test_deliveries_of_an_unknown_task_are_none_and_go_with_their_task(
    store: Store,
) -> None:
    assert await store.task_deliveries(TENANT, "nope") is None
    await one_pending(store)
    assert await store.purge_finished(T0 + 1_000, 10) == 1
    assert await store.task_deliveries(TENANT, "t1") is None
    assert await store.claim_deliveries(NODE, T0 + 1_000, T0 + 1_060, 10) == []
