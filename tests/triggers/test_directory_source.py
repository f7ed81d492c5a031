"""The directory source on real temporary folders: files present at start and files appearing
later are committed once, only when fully written, and kept, deleted or moved after commit."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from asyncfn.domain.errors import InvalidInput
from asyncfn.engine.triggers.base import SourceContext, parse_settings
from asyncfn.engine.triggers.directory import (
    KIND,
    DirectorySettings,
    DirectorySource,
    SettleTracker,
    scan,
)
from tests.triggers.conftest import RecordingSink, SinkCrash, run_source


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    return folder


def make(folder: Path, **settings: Any) -> DirectorySource:
    raw = {"path": str(folder), "settle_ms": 100, **settings}
    parsed = parse_settings(KIND.settings, raw)
    assert isinstance(parsed, DirectorySettings)
    return DirectorySource(parsed, SourceContext("files", "default", "handle", "node-1"))


def write(path: Path, data: bytes = b"hello") -> str:
    """Writes the file; returns the message id it should get."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    info = path.stat()
    return f"{path.name}:{info.st_mtime_ns}:{info.st_size}"


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def file_id(root: Path, path: Path) -> str:
    info = path.stat()
    return f"{path.relative_to(root).as_posix()}:{info.st_mtime_ns}:{info.st_size}"


async def test_existing_and_new_files_committed_once(inbox: Path) -> None:
    ids = [write(inbox / f"old-{n}.txt", f"old {n}".encode()) for n in range(25)]
    sink = RecordingSink()
    async with run_source(make(inbox), sink) as task:
        await sink.wait_for(25)
        ids += [write(inbox / f"new-{n}.txt", f"new {n}!".encode()) for n in range(25)]
        await sink.wait_for(50)
        await asyncio.sleep(0.5)  # change events and rescans must not commit anything again
        assert not task.done()
    assert sorted(sink.committed) == sorted(ids)
    assert set(sink.seen.values()) == {1}
    payload = json.loads(sink.committed[ids[30]])
    path = inbox / "new-5.txt"
    assert payload == {
        "path": str(path),
        "name": "new-5.txt",
        "relative_path": "new-5.txt",
        "size": 6,
        "mtime": path.stat().st_mtime_ns / 1e9,
    }
    assert len(names(inbox)) == 50  # after="keep"


async def test_ids_are_stable_across_restarts(inbox: Path) -> None:
    ids = [write(inbox / f"f{n}.txt") for n in range(3)]
    sink = RecordingSink()
    async with run_source(make(inbox), sink):
        await sink.wait_for(3)
    async with run_source(make(inbox), sink):  # "keep": offered again, a duplicate each
        await sink.wait_until(lambda: sink.duplicates == 3)
    assert sorted(sink.committed) == sorted(ids)
    assert set(sink.seen.values()) == {2}


async def test_rewritten_file_is_a_new_task(inbox: Path) -> None:
    first = write(inbox / "a.txt", b"one")
    sink = RecordingSink()
    async with run_source(make(inbox), sink):
        await sink.wait_for(1)
        await asyncio.sleep(0.05)
        second = write(inbox / "a.txt", b"second version")
        await sink.wait_for(2)
    assert sorted(sink.committed) == sorted([first, second])
    assert json.loads(sink.committed[second])["size"] == 14


async def test_crash_after_commit_then_move(inbox: Path, tmp_path: Path) -> None:
    done = tmp_path / "done"
    file_a = write(inbox / "a.txt")
    sink = RecordingSink(crash_after_commit=1)
    async with run_source(make(inbox, after="move", move_to=str(done)), sink) as task:
        await sink.wait_until(task.done)
    assert isinstance(task.exception(), SinkCrash)
    assert (inbox / "a.txt").exists()  # committed, never acknowledged
    assert not (done / "a.txt").exists()

    async with run_source(make(inbox, after="move", move_to=str(done)), sink):
        await sink.wait_until(lambda: (done / "a.txt").exists())
    assert not (inbox / "a.txt").exists()
    assert sink.seen == {file_a: 2}
    assert sink.duplicates == 1


async def test_delete_after_commit(inbox: Path) -> None:
    ids = [write(inbox / f"f{n}.bin") for n in range(5)]
    sink = RecordingSink()
    async with run_source(make(inbox, after="delete"), sink):
        await sink.wait_for(5)
        await sink.wait_until(lambda: names(inbox) == [])
    assert sorted(sink.committed) == sorted(ids)


async def test_move_recursive_into_watched_subfolder(inbox: Path) -> None:
    done = inbox / "done"
    top = write(inbox / "top.txt")
    deep = inbox / "sub" / "deep.txt"
    write(deep)
    deep_id = file_id(inbox, deep)
    sink = RecordingSink()
    settings = {"after": "move", "move_to": str(done), "recursive": True}
    async with run_source(make(inbox, **settings), sink):
        await sink.wait_for(2)
        await sink.wait_until(lambda: (done / "sub" / "deep.txt").exists())
        await asyncio.sleep(0.4)  # the moved files, now inside move_to, are not offered
    assert sorted(sink.committed) == sorted([top, deep_id])
    assert (done / "top.txt").exists()
    assert set(sink.seen.values()) == {1}


async def test_back_pressure_commits_nothing_while_full(inbox: Path) -> None:
    ids = [write(inbox / f"f{n}.txt") for n in range(10)]
    sink = RecordingSink(full=True)
    async with run_source(make(inbox), sink):
        await asyncio.sleep(0.3)
        assert sink.committed == {}
        assert sink.room_waits >= 1
        sink.full = False
        await sink.wait_for(10)
    assert sorted(sink.committed) == sorted(ids)


async def test_slowly_written_file_committed_once_when_settled(inbox: Path) -> None:
    path = inbox / "slow.dat"
    sink = RecordingSink()
    async with run_source(make(inbox, settle_ms=300), sink):
        await asyncio.sleep(0.1)
        with path.open("wb") as out:
            for _ in range(7):
                out.write(b"x" * 1000)
                out.flush()
                last_write = time.monotonic()
                await asyncio.sleep(0.1)
        await sink.wait_for(1)
        committed_at = time.monotonic()
        await asyncio.sleep(0.4)
    assert list(sink.seen.values()) == [1]
    (only,) = sink.committed
    assert only == file_id(inbox, path)
    assert json.loads(sink.committed[only])["size"] == 7000
    # committed only once the file held still for settle_ms after its last write (measured
    # from that write, not from after a sleep that a loaded machine may stretch)
    assert committed_at - last_write >= 0.25


async def test_pattern_and_hidden_files(inbox: Path) -> None:
    wanted = write(inbox / "a.csv")
    write(inbox / "b.txt")
    write(inbox / ".hidden.csv")
    write(inbox / ".tmp" / "c.csv")
    sink = RecordingSink()
    async with run_source(make(inbox, pattern="*.csv", recursive=True), sink):
        await sink.wait_for(1)
        write(inbox / ".partial.csv")
        await asyncio.sleep(0.4)
    assert list(sink.committed) == [wanted]


@pytest.mark.parametrize("recursive", [False, True])
async def test_recursive_on_and_off(inbox: Path, recursive: bool) -> None:
    top = write(inbox / "top.txt")
    deep = inbox / "sub" / "inner" / "deep.txt"
    write(deep)
    sink = RecordingSink()
    async with run_source(make(inbox, recursive=recursive), sink):
        await sink.wait_for(1)
        later = inbox / "sub" / "later.txt"
        write(later)
        await (sink.wait_for(3) if recursive else asyncio.sleep(0.4))
    expected = {top}
    if recursive:
        expected |= {file_id(inbox, deep), file_id(inbox, later)}
        payload = json.loads(sink.committed[file_id(inbox, deep)])
        assert payload["relative_path"] == "sub/inner/deep.txt"
        assert payload["name"] == "deep.txt"
    assert set(sink.committed) == expected


async def test_lag_reported(inbox: Path) -> None:
    for n in range(3):
        write(inbox / f"f{n}.txt")
    sink = RecordingSink()
    async with run_source(make(inbox, settle_ms=1500), sink):
        await sink.wait_until(lambda: len(sink.lags) > 0)
        await sink.wait_for(3)
        await sink.wait_until(lambda: sink.lags[-1] == 0, within_s=5)
    assert sink.lags[0] == 3


def test_files_older_than_settle_time_are_settled_at_once(inbox: Path) -> None:
    path = inbox / "old.txt"
    write(path)
    old = time.time() - 3600
    os.utime(path, (old, old))
    settings = DirectorySettings(path=str(inbox), settle_ms=60_000)
    tracker = SettleTracker(60.0)
    ready = tracker.observe(scan(settings))
    assert [state.relative_path for state in ready] == ["old.txt"]


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({}, "settings.path"),
        ({"path": "relative/dir"}, "settings.path"),
        ({"path": "/definitely/not/here"}, "settings.path"),
        ({"path": "FILE"}, "settings.path"),
        ({"path": "DIR", "after": "move"}, "settings.move_to"),
        ({"path": "DIR", "after": "move", "move_to": "done"}, "settings.move_to"),
        ({"path": "DIR", "after": "move", "move_to": "DIR"}, "settings.move_to"),
        ({"path": "DIR", "after": "move", "move_to": "FILE"}, "settings.move_to"),
        ({"path": "DIR", "move_to": "/tmp/x"}, "settings.move_to"),
        ({"path": "DIR", "after": "archive"}, "settings.after"),
        ({"path": "DIR", "settle_ms": -1}, "settings.settle_ms"),
        ({"path": "DIR", "settle_ms": 60_001}, "settings.settle_ms"),
        ({"path": "DIR", "pattern": ""}, "settings.pattern"),
        ({"path": "DIR", "colour": "red"}, "settings.colour"),
    ],
)
def test_settings_validation(inbox: Path, raw: dict[str, Any], field: str) -> None:
    a_file = inbox / "file.txt"
    a_file.write_text("x")
    places = {"DIR": str(inbox), "FILE": str(a_file)}
    resolved = {key: places.get(value, value) for key, value in raw.items()}
    with pytest.raises(InvalidInput) as caught:
        parse_settings(KIND.settings, resolved)
    assert caught.value.field == field


def test_settings_valid_move(inbox: Path, tmp_path: Path) -> None:
    settings = parse_settings(
        KIND.settings, {"path": f"{inbox}/", "after": "move", "move_to": str(tmp_path / "new")}
    )
    assert isinstance(settings, DirectorySettings)
    assert settings.path == str(inbox)
    assert settings.move_to == str(tmp_path / "new")
    assert not (tmp_path / "new").exists()  # created when the source starts, not on validation
    assert KIND.name == "directory"
