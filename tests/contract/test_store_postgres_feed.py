"""PostgreSQL only: the `ClusterFeed`. What one store (one node) commits, a listener on another
store of the same database hears: due tasks (ready), a stop, suspend or resume of a live
attempt naming the node that runs it (control), any change of a function (catalog); and after
its connection is cut, the listener reconnects and asks for a resync."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import psycopg
import pytest

from asyncfn.domain.models import FunctionSpec, Submission
from asyncfn.store.feed import ClusterFeed, ControlSignal
from asyncfn.store.postgres.listen import parse_control
from asyncfn.store.postgres.store import PostgresStore
from tests.contract.conftest import postgres_schema

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(60)]

T0 = 1_700_000_000.0
TENANT = "acme"
FN = "resize"
WHO = {"by": "test"}
HEAR_S = 5.0


class Heard:
    """A FeedHandlers that queues what it hears, per channel."""

    def __init__(self) -> None:
        self.ready: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self.control: asyncio.Queue[ControlSignal] = asyncio.Queue()
        self.catalog: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self.resyncs: asyncio.Queue[None] = asyncio.Queue()

    def on_ready(self, tenant: str, function: str) -> None:
        self.ready.put_nowait((tenant, function))

    def on_control(self, signal: ControlSignal) -> None:
        self.control.put_nowait(signal)

    def on_catalog(self, tenant: str, name: str) -> None:
        self.catalog.put_nowait((tenant, name))

    def on_resync(self) -> None:
        self.resyncs.put_nowait(None)


@pytest.fixture
async def nodes() -> AsyncIterator[tuple[PostgresStore, PostgresStore, Heard]]:
    """Two stores on one fresh schema; the second one listens."""
    async with postgres_schema() as url:
        a, b = PostgresStore.from_url(url), PostgresStore.from_url(url)
        try:
            await a.open()
            await b.open()
            heard = Heard()
            await b.listen(heard)
            yield a, b, heard
        finally:
            await asyncio.gather(a.close(), b.close())


async def running(store: PostgresStore, task_id: str, node: str = "node-1") -> int:
    """A task of FN submitted and claimed by `node`; answers its row."""
    await store.submit_many(TENANT, FN, [Submission(b"x", task_id=task_id)], T0, 3, 0)
    claimed = await store.claim_ready(TENANT, FN, node, 1, T0 + 1, T0 + 60)
    assert [c.id for c in claimed] == [task_id]
    return claimed[0].row


def test_the_postgres_store_is_a_cluster_feed() -> None:
    assert isinstance(PostgresStore.from_url("postgresql://localhost/x"), ClusterFeed)


async def test_a_submit_on_one_node_wakes_the_other(
    nodes: tuple[PostgresStore, PostgresStore, Heard],
) -> None:
    a, _, heard = nodes

    await a.submit_many(TENANT, FN, [Submission(b"x")], T0, 3, 0)

    assert await asyncio.wait_for(heard.ready.get(), HEAR_S) == (TENANT, FN)


async def test_a_delayed_submit_wakes_nobody(
    nodes: tuple[PostgresStore, PostgresStore, Heard],
) -> None:
    a, _, heard = nodes

    await a.submit_many(TENANT, FN, [Submission(b"x", run_at=T0 + 3600)], T0, 3, 0)
    await a.submit_many(TENANT, "other", [Submission(b"x")], T0, 3, 0)

    assert await asyncio.wait_for(heard.ready.get(), HEAR_S) == (TENANT, "other")


async def test_a_stop_of_a_running_task_names_the_node_that_runs_it(
    nodes: tuple[PostgresStore, PostgresStore, Heard],
) -> None:
    a, _, heard = nodes
    row = await running(a, "t1", node="node-1")

    await a.stop(TENANT, "t1", T0 + 2, WHO)

    signal = await asyncio.wait_for(heard.control.get(), HEAR_S)
    assert signal == ControlSignal("stop", row, 1, "node-1", TENANT, FN)


async def test_suspend_and_resume_of_a_running_task_are_heard_in_order(
    nodes: tuple[PostgresStore, PostgresStore, Heard],
) -> None:
    a, _, heard = nodes
    row = await running(a, "t1", node="node-1")

    await a.suspend(TENANT, "t1", T0 + 2, WHO)
    await a.resume(TENANT, "t1", T0 + 3, WHO)
    await a.suspend(TENANT, "t1", T0 + 4, WHO)
    await a.stop(TENANT, "t1", T0 + 5, WHO)  # a frozen attempt is stopped too

    kinds = [(await asyncio.wait_for(heard.control.get(), HEAR_S)) for _ in range(4)]
    assert [s.kind for s in kinds] == ["suspend", "resume", "suspend", "stop"]
    assert {(s.row, s.attempt, s.node) for s in kinds} == {(row, 1, "node-1")}


async def test_controls_of_waiting_tasks_and_refused_ones_signal_no_node(
    nodes: tuple[PostgresStore, PostgresStore, Heard],
) -> None:
    """Only a live attempt needs its node: a queued task is held or stopped by the store alone,
    and a refused transition commits nothing."""
    a, _, heard = nodes
    await a.submit_many(TENANT, FN, [Submission(b"x", task_id="queued")], T0, 3, 0)
    await a.suspend(TENANT, "queued", T0 + 1, WHO)
    await a.resume(TENANT, "queued", T0 + 2, WHO)
    await a.stop(TENANT, "queued", T0 + 3, WHO)
    row = await running(a, "live", node="node-2")
    await a.resume(TENANT, "live", T0 + 4, WHO)  # refused: it is not suspended

    await a.stop(TENANT, "live", T0 + 5, WHO)

    signal = await asyncio.wait_for(heard.control.get(), HEAR_S)
    assert (signal.kind, signal.row, signal.node) == ("stop", row, "node-2")


async def test_every_change_of_a_function_is_heard(
    nodes: tuple[PostgresStore, PostgresStore, Heard],
) -> None:
    a, _, heard = nodes

    await a.put_function(FunctionSpec(name=FN, tenant=TENANT, handler="app:h"))
    sha = await a.put_code(b"zip", T0)
    await a.set_function_code(TENANT, FN, sha, T0 + 1)
    await a.set_function_paused(TENANT, FN, True, T0 + 2)
    await a.delete_function(TENANT, FN, T0 + 3)
    await a.set_function_paused(TENANT, "missing", True, T0 + 4)  # changes nothing
    await a.put_function(FunctionSpec(name="last", tenant=TENANT, handler="app:h"))

    keys = [(await asyncio.wait_for(heard.catalog.get(), HEAR_S)) for _ in range(5)]
    assert keys == [(TENANT, FN)] * 4 + [(TENANT, "last")]


async def test_a_cut_listener_reconnects_asks_for_a_resync_and_hears_again(
    nodes: tuple[PostgresStore, PostgresStore, Heard],
) -> None:
    a, b, heard = nodes
    async with await psycopg.AsyncConnection.connect(b.settings.conninfo, autocommit=True) as admin:
        cursor = await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND query LIKE 'LISTEN asyncfn%%'"
            " AND pid <> pg_backend_pid()"
        )
        assert await cursor.fetchall(), "no LISTEN connection to cut"

    await asyncio.wait_for(heard.resyncs.get(), HEAR_S)
    await a.put_function(FunctionSpec(name=FN, tenant=TENANT, handler="app:h"))

    assert await asyncio.wait_for(heard.catalog.get(), HEAR_S) == (TENANT, FN)


def test_a_malformed_control_payload_is_refused() -> None:
    with pytest.raises(ValueError, match="control"):
        parse_control('{"kind": "explode", "row": 1}')
    with pytest.raises(ValueError, match="control"):
        parse_control("not json")


async def test_a_wake_is_heard_by_every_node(
    nodes: tuple[PostgresStore, PostgresStore, Heard],
) -> None:
    a, _, heard = nodes

    await a.wake(TENANT, FN)

    assert await asyncio.wait_for(heard.ready.get(), HEAR_S) == (TENANT, FN)
