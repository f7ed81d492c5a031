"""The `directory` trigger source: files that appear, fully written, in a folder on this node
become tasks; once committed a file is kept, deleted or moved away (the acknowledgement)."""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator
from watchfiles import awatch

from asyncfn.engine.triggers.base import Message, Sink, SourceContext, SourceKind, SourceSettings

logger = logging.getLogger(__name__)

MAX_BATCH = 1000
"""At most this many files per commit."""
LAG_EVERY_S = 1.0
"""Report lag at most (and, while running, about) this often."""
RESCAN_EVERY_S = 5.0
"""A full scan at least this often, whatever the watcher says (it may miss events)."""
WATCH_DEBOUNCE_MS = 50


class DirectorySettings(SourceSettings):
    """Which files of which folder, when a file counts as written, and what becomes of it."""

    path: str
    pattern: str = Field(default="*", min_length=1)
    recursive: bool = False
    settle_ms: int = Field(default=500, ge=0, le=60_000)
    after: Literal["keep", "delete", "move"] = "keep"
    move_to: str | None = Field(default=None, validate_default=True)

    @field_validator("path")
    @classmethod
    def _existing_directory(cls, value: str) -> str:
        if not os.path.isabs(value):
            raise ValueError("path must be an absolute path")
        if not os.path.isdir(value):
            raise ValueError(f"path {value!r} does not exist or is not a directory")
        return os.path.normpath(value)

    @field_validator("move_to")
    @classmethod
    def _move_target(cls, value: str | None, info: ValidationInfo) -> str | None:
        after = info.data.get("after")
        if after != "move":
            if value is not None:
                raise ValueError('move_to is only allowed with after="move"')
            return None
        if value is None:
            raise ValueError('move_to is required with after="move"')
        if not os.path.isabs(value):
            raise ValueError("move_to must be an absolute path")
        target = os.path.normpath(value)
        if os.path.exists(target) and not os.path.isdir(target):
            raise ValueError(f"move_to {value!r} exists and is not a directory")
        if target == info.data.get("path"):
            raise ValueError("move_to must differ from path")
        return target


@dataclass(frozen=True, slots=True)
class FileState:
    """A candidate file as one scan saw it."""

    path: str
    relative_path: str
    size: int
    mtime_ns: int

    @property
    def id(self) -> str:
        return f"{self.relative_path}:{self.mtime_ns}:{self.size}"

    def message(self) -> Message:
        payload = {
            "path": self.path,
            "name": os.path.basename(self.path),
            "relative_path": self.relative_path,
            "size": self.size,
            "mtime": self.mtime_ns / 1e9,
        }
        return Message(self.id, json.dumps(payload, ensure_ascii=False).encode("utf-8"))


def scan(settings: DirectorySettings) -> dict[str, FileState]:
    """Every candidate file (matching, not hidden, not inside `move_to`), by relative path.
    Blocking: run it in a thread."""
    found: dict[str, FileState] = {}
    pending = [settings.path]
    while pending:
        folder = pending.pop()
        for entry in _entries(folder, top=folder == settings.path):
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                if settings.recursive and entry.path != settings.move_to:
                    pending.append(entry.path)
            elif fnmatch.fnmatch(entry.name, settings.pattern):
                state = _stat(entry, settings.path)
                if state is not None:
                    found[state.relative_path] = state
    return found


def _entries(folder: str, *, top: bool) -> Iterator[os.DirEntry[str]]:
    """The entries of `folder`; a subfolder that vanished or cannot be read yields nothing."""
    try:
        with os.scandir(folder) as listing:
            yield from listing
    except (FileNotFoundError, PermissionError):
        if top:
            raise


def _stat(entry: os.DirEntry[str], root: str) -> FileState | None:
    try:
        if not entry.is_file():
            return None
        info = entry.stat()
    except FileNotFoundError:
        return None
    relative = os.path.relpath(entry.path, root).replace(os.sep, "/")
    return FileState(entry.path, relative, info.st_size, info.st_mtime_ns)


class SettleTracker:
    """Which candidates count as fully written: size and mtime unchanged for `settle_s` as seen
    here, or an mtime already `settle_s` in the past (the OS says nobody wrote it since)."""

    def __init__(self, settle_s: float) -> None:
        self._settle_s = settle_s
        self._since: dict[str, tuple[str, float]] = {}
        """relative path → (id, monotonic time its current state was first seen)."""
        self.committed: set[str] = set()
        """Ids committed during this run (not offered again while the file is unchanged)."""
        self.waiting = 0
        self.next_due: float | None = None

    def observe(self, files: dict[str, FileState]) -> list[FileState]:
        """The settled, uncommitted files of a scan; updates `waiting` and `next_due`."""
        now, wall = time.monotonic(), time.time()
        since: dict[str, tuple[str, float]] = {}
        for rel, state in files.items():
            seen = self._since.get(rel)
            since[rel] = seen if seen is not None and seen[0] == state.id else (state.id, now)
        self._since = since
        self.committed &= {f.id for f in files.values()}
        ready: list[FileState] = []
        dues: list[float] = []
        for rel, state in files.items():
            if state.id in self.committed:
                continue
            due = self._due(since[rel][1], state.mtime_ns / 1e9, now, wall)
            if due <= now:
                ready.append(state)
            else:
                dues.append(due)
        self.waiting = len(ready) + len(dues)
        self.next_due = min(dues, default=None)
        return ready

    def _due(self, first_seen: float, mtime: float, now: float, wall: float) -> float:
        """Monotonic time at which a state first seen at `first_seen` counts as settled."""
        by_watch = first_seen + self._settle_s
        if mtime <= wall:
            return min(by_watch, now + (mtime + self._settle_s - wall))
        return by_watch

    def done(self, states: Sequence[FileState]) -> None:
        self.committed.update(s.id for s in states)
        self.waiting = max(0, self.waiting - len(states))


def finish(settings: DirectorySettings, states: Sequence[FileState]) -> None:
    """The acknowledgement of committed files: delete or move each (nothing for "keep"),
    unless it changed since the scan (then its new version is a new task). Blocking."""
    if settings.after == "keep":
        return
    for state in states:
        try:
            info = os.stat(state.path)
            if (info.st_size, info.st_mtime_ns) != (state.size, state.mtime_ns):
                continue
            if settings.after == "delete":
                os.remove(state.path)
            else:
                _move(state, settings.move_to or "")
        except FileNotFoundError:
            continue
        except OSError:
            logger.warning(
                "could not %s %s after commit", settings.after, state.path, exc_info=True
            )


def _move(state: FileState, move_to: str) -> None:
    target = os.path.join(move_to, *state.relative_path.split("/"))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    shutil.move(state.path, target)


class DirectorySource:
    """Scans the folder (in a thread) whenever the watcher reports a change, a file is due to
    settle, or `RESCAN_EVERY_S` passed; commits settled files, then applies `after`."""

    def __init__(self, settings: DirectorySettings, context: SourceContext) -> None:
        self._settings = settings
        self._context = context
        self._tracker = SettleTracker(settings.settle_ms / 1000)
        self._changed = asyncio.Event()
        self._next_lag = 0.0

    async def run(self, sink: Sink) -> None:
        if self._settings.move_to is not None:
            await asyncio.to_thread(os.makedirs, self._settings.move_to, exist_ok=True)
        watcher = asyncio.get_running_loop().create_task(self._watch())
        try:
            while True:
                await sink.room()
                self._changed.clear()
                files = await asyncio.to_thread(scan, self._settings)
                scanned = time.monotonic()
                ready = self._tracker.observe(files)
                self._report_lag(sink)
                if ready:
                    await self._deliver(sink, ready)
                    continue
                await self._wait(sink, watcher, scanned)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    async def _watch(self) -> None:
        """Sets `_changed` on every batch of file-system events under the folder."""
        async for _ in awatch(
            self._settings.path,
            watch_filter=None,
            debounce=WATCH_DEBOUNCE_MS,
            recursive=self._settings.recursive,
            ignore_permission_denied=True,
        ):
            self._changed.set()

    async def _deliver(self, sink: Sink, ready: Sequence[FileState]) -> None:
        for start in range(0, len(ready), MAX_BATCH):
            chunk = ready[start : start + MAX_BATCH]
            if start:
                await sink.room()
            await sink.commit([state.message() for state in chunk])
            await asyncio.to_thread(finish, self._settings, chunk)
            self._tracker.done(chunk)

    async def _wait(self, sink: Sink, watcher: asyncio.Task[None], scanned: float) -> None:
        """Until a rescan is due: a change, the next file settling, or `RESCAN_EVERY_S`. Wakes
        about every second to report lag; raises if the watcher died."""
        rescan_at = scanned + RESCAN_EVERY_S
        if self._tracker.next_due is not None:
            rescan_at = min(rescan_at, self._tracker.next_due)
        while not self._changed.is_set():
            if watcher.done():
                watcher.result()
            remaining = rescan_at - time.monotonic()
            if remaining <= 0:
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, LAG_EVERY_S)):
                    await self._changed.wait()
            self._report_lag(sink)

    def _report_lag(self, sink: Sink) -> None:
        now = time.monotonic()
        if now >= self._next_lag:
            self._next_lag = now + LAG_EVERY_S
            sink.report_lag(self._tracker.waiting)


KIND = SourceKind("directory", DirectorySettings, DirectorySource)
