"""Integration fixtures: `runtime` builds real instance pools over handler modules written into
tmp_path, records what their listener hears, and stops every pool it made."""

from __future__ import annotations

import asyncio
import os
import textwrap
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from asyncfn.domain.models import FunctionSpec
from asyncfn.runtime.pool import Assignment, InstancePool


@dataclass
class Recorder:
    """A RuntimeListener that keeps everything it is told."""

    started: list[tuple[int, int, str]] = field(default_factory=list)
    logs: list[tuple[int, int, str, str]] = field(default_factory=list)
    progress: list[tuple[int, int, float, str | None]] = field(default_factory=list)
    checkpoints: list[tuple[int, int, Any]] = field(default_factory=list)

    def on_started(self, row: int, attempt: int, instance_id: str, at: float) -> None:
        self.started.append((row, attempt, instance_id))

    def on_log(self, row: int, attempt: int, stream: str, line: str, at: float) -> None:
        self.logs.append((row, attempt, stream, line))

    def on_progress(self, row: int, attempt: int, fraction: float, message: str | None) -> None:
        self.progress.append((row, attempt, fraction, message))

    def on_checkpoint(self, row: int, attempt: int, checkpoint: Any) -> None:
        self.checkpoints.append((row, attempt, checkpoint))

    def lines(self, row: int, stream: str) -> list[str]:
        return [line for r, _, s, line in self.logs if r == row and s == stream]


def process_state(pid: int) -> str | None:
    """The state letter of `pid` in /proc (R, S, T, Z, ...), None if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return None


def process_gone(pid: int) -> bool:
    """True once `pid` has exited (a zombie counts: PID 1 here may never reap it)."""
    return process_state(pid) in (None, "Z", "X")


def wait_until_gone(pid: int, within_s: float = 3.0) -> bool:
    deadline = time.monotonic() + within_s
    while not process_gone(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return process_gone(pid)


def live_children(pid: int) -> list[int]:
    """Processes whose parent is `pid` and that have not exited."""
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
            children.append(int(entry))
    return children


class RuntimeKit:
    """Builds pools over real handler code and assignments for them."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.recorder = Recorder()
        self.pools: list[InstancePool] = []
        self._rows = iter(range(1, 1_000_000))

    def code(self, source: str, module: str = "handler") -> Path:
        """A code folder holding `module.py` with `source` (dedented)."""
        folder = self.tmp_path / "code"
        folder.mkdir(exist_ok=True)
        (folder / f"{module}.py").write_text(textwrap.dedent(source))
        return folder

    def pool(
        self,
        source: str | None = None,
        *,
        code_dir: Path | None = None,
        idle_ttl_s: float = 60.0,
        fork_server: bool = False,
        **spec: Any,
    ) -> InstancePool:
        """A pool over `source` (a python handler module) or `code_dir`, or a command spec;
        with `fork_server`, its instances fork from one once it is `start()`ed."""
        spec.setdefault("name", "fn")
        if source is not None:
            spec.setdefault("handler", "handler:handler")
            code_dir = self.code(source)
        if "command" in spec:
            spec["runtime"] = "command"
            spec["command"] = tuple(spec["command"])
        pool = InstancePool(
            FunctionSpec(**spec),
            code_dir,
            self.recorder,
            scratch_dir=self.tmp_path / "scratch",
            idle_ttl_s=idle_ttl_s,
            base_env=os.environ,
            fork_server=fork_server,
        )
        self.pools.append(pool)
        return pool

    def assign(
        self, payload: bytes = b"", *, timeout_s: float = 30.0, row: int | None = None, **extra: Any
    ) -> Assignment:
        row = next(self._rows) if row is None else row
        return Assignment(
            row=row,
            task_id=f"task-{row}",
            function="fn",
            attempt=extra.pop("attempt", 1),
            payload=payload,
            deadline=time.time() + timeout_s,
            **extra,
        )

    gone = staticmethod(process_gone)
    state_of = staticmethod(process_state)
    children_of = staticmethod(live_children)
    wait_until_gone = staticmethod(wait_until_gone)

    @staticmethod
    async def until(condition: Callable[[], object], within_s: float = 10.0) -> None:
        """Poll `condition` until it is truthy; fail the test after `within_s`."""
        for _ in range(int(within_s / 0.01)):
            if condition():
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"condition not met within {within_s} s")

    async def wait_gone(self, pid: int, within_s: float = 3.0) -> bool:
        for _ in range(int(within_s / 0.02)):
            if process_gone(pid):
                return True
            await asyncio.sleep(0.02)
        return process_gone(pid)


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[RuntimeKit]:
    kit = RuntimeKit(tmp_path)
    yield kit
    await asyncio.gather(*(pool.stop(grace_s=0.5) for pool in kit.pools))
