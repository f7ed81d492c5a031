"""The TriggerRunner and TriggerSink on a real SQLite store with the real `directory` source:
files become tasks named after their message ids, back-pressure holds the source at the queue
bound, a failing source is restarted with its error recorded, and config changes reach the
running sources."""

from __future__ import annotations

import asyncio
import io
import shutil
import time
import zipfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from asyncfn.domain.errors import InvalidInput, NotFound
from asyncfn.domain.models import FunctionSpec, TaskQuery
from asyncfn.domain.triggers import Trigger
from asyncfn.engine.catalog import FunctionCatalog
from asyncfn.engine.service import Supervisor
from asyncfn.engine.submitter import Submitter
from asyncfn.engine.triggers.runner import TriggerRunner
from asyncfn.metrics import NodeMetrics
from asyncfn.store import open_store
from asyncfn.store.base import Store

TENANT = "default"
SETTLE_MS = 200
"""Long enough that a file is never taken half-written (`write_text` truncates, then writes:
with 0 a scan between the two would make a task of the empty file, then one of the full)."""

pytestmark = pytest.mark.timeout(30)


def code_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("main.py", "def handler(event, context):\n    return None\n")
    return buf.getvalue()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'triggers.db'}")
    await opened.open()
    yield opened
    await opened.close()


@pytest.fixture
async def runner(store: Store) -> AsyncIterator[TriggerRunner]:
    catalog = FunctionCatalog(store)
    await catalog.start()
    spec = FunctionSpec.from_config({"name": "echo", "handler": "main:handler"})
    await catalog.put(spec)
    await catalog.set_code(TENANT, "echo", code_zip())
    submitter = Submitter(store, catalog, lambda key, at: None)
    made = TriggerRunner(
        store, catalog, submitter, Supervisor(), node="node-1", metrics=NodeMetrics()
    )
    await made.start()
    yield made
    await made.stop()


def folder_trigger(inbox: Path, **settings: object) -> Trigger:
    return Trigger(
        "inbox",
        "echo",
        "directory",
        tenant=TENANT,
        settings={"path": str(inbox), "settle_ms": SETTLE_MS, **settings},
    )


async def task_ids(store: Store) -> list[str]:
    tasks, _ = await store.list_tasks(TaskQuery(tenant=TENANT, function="echo", limit=1000))
    return sorted(t.id for t in tasks)


async def eventually(
    check: Callable[[], object], within_s: float = 10.0, about: object = None
) -> None:
    deadline = time.monotonic() + within_s
    while True:
        if check():
            return
        assert time.monotonic() < deadline, f"condition never held; {about!r}"
        await asyncio.sleep(0.02)


async def test_files_become_tasks_named_after_their_message_ids(
    runner: TriggerRunner, store: Store, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for n in range(5):
        (inbox / f"f{n}.txt").write_text(f"file {n}")
    stored, created = await runner.put(folder_trigger(inbox))
    assert created and stored.settings == {"path": str(inbox), "settle_ms": SETTLE_MS}
    state = runner.state(stored)
    await eventually(lambda: state.created == 5)
    ids = await task_ids(store)
    assert len(ids) == 5 and all(i.startswith("inbox.") for i in ids)
    assert state.duplicates == 0 and state.last_error is None
    assert state.rate(time.time()) == pytest.approx(5 / 60)


async def test_back_pressure_holds_the_source_at_the_queue_bound(
    runner: TriggerRunner, store: Store, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    await runner.put(folder_trigger(inbox))
    await runner.put(
        Trigger(
            "inbox",
            "echo",
            "directory",
            tenant=TENANT,
            settings={"path": str(inbox), "settle_ms": SETTLE_MS},
            max_queue_depth=3,
        )
    )
    stored = await runner.get(TENANT, "inbox")
    state = runner.state(stored)
    (inbox / "a.txt").write_text("a")
    await eventually(lambda: state.created == 1, about=state)
    for n in range(10):
        (inbox / f"b{n}.txt").write_text("b")
    await eventually(lambda: state.phase == "holding")
    assert await store.queue_depth(TENANT, "echo") >= 3
    held = state.created
    await asyncio.sleep(0.5)
    assert state.created == held  # nothing pulled while the queue is full
    for task_id in await task_ids(store):
        await store.stop(TENANT, task_id, time.time(), None)  # the queue empties
    await eventually(lambda: state.created == 11)


async def test_a_failing_source_records_its_error_and_is_restarted(
    runner: TriggerRunner, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    stored, _ = await runner.put(folder_trigger(inbox))
    state = runner.state(stored)
    await eventually(lambda: state.phase == "running")
    shutil.rmtree(inbox)
    await eventually(lambda: state.phase == "failing" and state.restarts >= 1)
    assert state.last_error is not None and "inbox" in state.last_error
    inbox.mkdir()
    (inbox / "back.txt").write_text("again")
    await eventually(lambda: state.created == 1, within_s=15)
    assert state.restarts >= 1


async def test_changes_reach_the_running_source(
    runner: TriggerRunner, store: Store, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.csv").write_text("1")
    (inbox / "b.txt").write_text("2")
    stored, _ = await runner.put(folder_trigger(inbox, pattern="*.csv"))
    await eventually(lambda: runner.state(stored).created == 1)
    changed, created = await runner.put(folder_trigger(inbox, pattern="*.txt"))
    assert not created
    await eventually(lambda: runner.state(changed).created == 1)
    assert len(await task_ids(store)) == 2
    disabled, _ = await runner.put(
        Trigger(
            "inbox", "echo", "directory", tenant=TENANT, settings=changed.settings, enabled=False
        )
    )
    assert runner.state(disabled).phase == "disabled"
    (inbox / "c.txt").write_text("3")
    await asyncio.sleep(0.5)
    assert len(await task_ids(store)) == 2
    await runner.delete(TENANT, "inbox")
    with pytest.raises(NotFound):
        await runner.get(TENANT, "inbox")


async def test_put_checks_function_type_and_settings(runner: TriggerRunner, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        await runner.put(Trigger("t", "ghost", "directory", settings={"path": str(tmp_path)}))
    with pytest.raises(InvalidInput) as bad_type:
        await runner.put(Trigger("t", "echo", "kafka", settings={}))
    assert bad_type.value.field == "type"
    with pytest.raises(InvalidInput) as bad_key:
        await runner.put(Trigger("t", "echo", "nats", settings={"stream": "s", "batchh": 1}))
    assert bad_key.value.field == "settings.batchh"
    with pytest.raises(InvalidInput) as bad_value:
        await runner.put(Trigger("t", "echo", "redis-stream", settings={"stream": "s", "batch": 0}))
    assert bad_value.value.field == "settings.batch"
