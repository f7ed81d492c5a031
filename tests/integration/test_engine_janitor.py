"""The janitor on a real SQLite store: retention purge and hand-back of lost attempts."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from asyncfn.domain.models import FunctionSpec, Submission
from asyncfn.domain.states import TaskStatus
from asyncfn.engine.catalog import FunctionCatalog
from asyncfn.engine.completer import Completer
from asyncfn.engine.completions import Completions
from asyncfn.engine.janitor import Janitor
from asyncfn.engine.reporter import AttemptReporter
from asyncfn.engine.service import Supervisor
from asyncfn.store import open_store
from asyncfn.store.base import Finish, Store

TENANT = "default"
NODE = "node-1"
DAY = 86_400.0


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'janitor.db'}")
    await opened.open()
    yield opened
    await opened.close()


async def make_janitor(store: Store, retention_s: float = 7 * DAY) -> Janitor:
    supervisor = Supervisor()
    catalog = FunctionCatalog(store)
    await catalog.put(FunctionSpec(name="f", handler="m:h"))
    await catalog.start()
    reporter = AttemptReporter(store, supervisor, max_bytes=1 << 20)
    completer = Completer(store, reporter, Completions(), on_retry=lambda at: None)
    return Janitor(
        store,
        catalog,
        completer,
        supervisor,
        list,
        node=NODE,
        interval_s=60,
        retention_s=retention_s,
    )


async def finished_task(store: Store, task_id: str, at: float) -> None:
    await store.submit_many(TENANT, "f", [Submission(b"x", task_id)], at - 1, 4, 0)
    (claimed,) = await store.claim_ready(TENANT, "f", NODE, 1, at - 1, at + 30)
    (ok,) = await store.finish([Finish(claimed.row, 1, TaskStatus.SUCCEEDED, at, result=1)])
    assert ok


async def test_purge_deletes_only_tasks_ended_before_the_retention(store: Store) -> None:
    now = time.time()
    await finished_task(store, "old", now - 8 * DAY)
    await finished_task(store, "recent", now - 1 * DAY)
    await store.submit_many(TENANT, "f", [Submission(b"x", "queued-old")], now - 9 * DAY, 4, 0)
    janitor = await make_janitor(store)
    assert await janitor.purge() == 1
    assert await store.get_task(TENANT, "old") is None
    assert await store.get_task(TENANT, "recent") is not None
    assert await store.get_task(TENANT, "queued-old") is not None
    again = await store.submit_many(TENANT, "f", [Submission(b"y", "old")], now, 4, 0)
    assert again[0].created, "a purged id is free again"


async def test_restart_hands_back_running_and_ends_stopping_as_stopped(store: Store) -> None:
    now = time.time()
    subs = [Submission(b"a", "running"), Submission(b"b", "stopping")]
    await store.submit_many(TENANT, "f", subs, now, 4, 0)
    await store.claim_ready(TENANT, "f", NODE, 2, now, now + 30)
    ctl = await store.stop(TENANT, "stopping", now, {"by": "test"})
    assert ctl is not None and ctl.status is TaskStatus.STOPPING
    janitor = await make_janitor(store)
    assert await janitor.recover(NODE) == 2
    running = await store.get_task(TENANT, "running")
    stopping = await store.get_task(TENANT, "stopping")
    assert running is not None and running.status is TaskStatus.RETRYING
    assert running.events[-1].detail is not None
    assert running.events[-1].detail["reason"] == "node restarted"
    assert stopping is not None and stopping.status is TaskStatus.STOPPED
