"""Fixtures of the API fuzz suite: one real server process for the module, with real targets
(functions with code; ended, queued and running tasks; a schedule; a trigger) for the fuzzer."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness import TERMINAL, Server, deploy, free_port, make_zip, wait_terminal

ECHO = """
def handler(event, context):
    return {"echo": event.decode(errors="replace")[:100]}
"""
BOOM = """
def handler(event, context):
    raise ValueError("boom")
"""
SLOW = """
import time

def handler(event, context):
    time.sleep(300)
"""
HOST = "gamma"
"""Holds the queued and running task targets; the fuzzer never aims at it, so they stay."""


@dataclass
class Targets:
    """Names and ids that exist on the fuzzed server, and how to put each back as it was."""

    http: httpx.Client
    watch_dir: Path
    functions: dict[str, str] = field(default_factory=lambda: {"alpha": ECHO, "beta": BOOM})
    tasks: list[str] = field(default_factory=list)
    schedules: list[str] = field(default_factory=lambda: ["fz-every"])
    triggers: list[str] = field(default_factory=lambda: ["fz-dir"])
    serial: Iterator[int] = field(default_factory=itertools.count)

    def restore_function(self, name: str) -> None:
        deploy(self.http, name, self.functions[name], timeout_s=10)
        self.resume_function(name)

    def resume_function(self, name: str) -> None:
        resp = self.http.post(f"/v1/functions/{name}:resume")
        assert resp.status_code == 200, resp.text

    def restore_code(self, name: str) -> None:
        resp = self.http.put(
            f"/v1/functions/{name}/code", content=make_zip({"main.py": self.functions[name]})
        )
        assert resp.status_code == 200, resp.text

    def restore_schedule(self, name: str) -> None:
        body = {"function": "alpha", "every_s": 3600, "payload": {"from": "schedule"}}
        resp = self.http.put(f"/v1/schedules/{name}", json=body)
        assert resp.status_code in (200, 201), resp.text

    def restore_trigger(self, name: str) -> None:
        body = {"function": "alpha", "type": "directory", "path": str(self.watch_dir)}
        resp = self.http.put(f"/v1/triggers/{name}", json=body)
        assert resp.status_code in (200, 201), resp.text

    def submit(self, function: str, prefix: str, headers: dict[str, str] | None = None) -> str:
        task_id = f"{prefix}-{next(self.serial)}"
        resp = self.http.post(
            f"/v1/functions/{function}/invocations",
            content=b'{"hello": 1}',
            headers={"X-Task-Id": task_id, **(headers or {})},
        )
        assert resp.status_code == 202, resp.text
        return task_id

    def queued(self) -> str:
        return self.submit(HOST, "fz-late", {"X-Delay-Seconds": "3600"})

    def running(self) -> str:
        task_id = self.submit(HOST, "fz-run")
        deadline = time.monotonic() + 20
        while self.http.get(f"/v1/tasks/{task_id}").json()["status"] != "Running":
            assert time.monotonic() < deadline, f"{task_id} did not start"
            time.sleep(0.02)
        return task_id

    def restore_task(self, task_id: str) -> None:
        """A queued or running target that a control request ended is replaced by a new one."""
        if not task_id.startswith(("fz-late", "fz-run")):
            return
        status = self.http.get(f"/v1/tasks/{task_id}").json()["status"]
        if status in TERMINAL:
            fresh = self.queued() if task_id.startswith("fz-late") else self.running()
            self.tasks[self.tasks.index(task_id)] = fresh


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("fuzz")
    # a Sync invocation of a task that does not end in time answers 504 after this long
    env = {"ASYNCFN_SYNC_TIMEOUT_S": "1"}
    srv = Server(root / "data", free_port(), env=env).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def targets(fuzz_server: Server) -> Iterator[Targets]:
    watch_dir = fuzz_server.data_dir.parent / "watched"
    watch_dir.mkdir()
    (watch_dir / "one.json").write_text('{"file": 1}')
    with httpx.Client(base_url=fuzz_server.url, timeout=30) as http:
        found = Targets(http, watch_dir)
        for name in found.functions:
            found.restore_function(name)
        deploy(http, HOST, SLOW, timeout_s=600, max_instances=2, stop_grace_s=0.5)
        ended = [found.submit("alpha", "fz-ok"), found.submit("beta", "fz-fail")]
        for task_id in ended:
            wait_terminal(http, task_id)
        found.tasks += [*ended, found.queued(), found.queued(), found.running(), found.running()]
        for name in found.schedules:
            found.restore_schedule(name)
        for name in found.triggers:
            found.restore_trigger(name)
        yield found
