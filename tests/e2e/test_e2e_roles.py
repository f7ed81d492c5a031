"""Node roles on real processes: an `api` node accepts, a `worker` node runs; a worker's port
answers only the probes; an `api` node on SQLite refuses to start."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.e2e.harness import Server, deploy, free_port, wait_terminal
from tests.e2e.pgdb import fresh_database

PARENT = """\
def handler(event, context):
    child = context.client.invoke_async("child", event)
    return {"child": child.task_id}
"""
CHILD = "def handler(event, context):\n    return event.decode()\n"


@pytest.fixture
def store_url() -> Iterator[str]:
    with fresh_database() as url:
        yield url


def test_api_node_accepts_and_only_the_worker_runs(tmp_path: Path, store_url: str) -> None:
    api = Server(
        tmp_path / "api",
        free_port(),
        {"ASYNCFN_STORE": store_url},
        name="api-1",
        args=["--role", "api"],
    )
    worker = Server(tmp_path / "worker", free_port(), {"ASYNCFN_STORE": store_url}, name="w-1")
    try:
        api.start()
        with httpx.Client(base_url=api.url, timeout=30) as http:
            deploy(http, "parent", PARENT)
            deploy(http, "child", CHILD)
            # started after the deploy: the worker reads the catalog when it starts
            worker.env["ASYNCFN_ROLE"] = "worker"
            worker.env["ASYNCFN_API_URL"] = api.url
            worker.start()
            resp = http.post("/v1/functions/parent/invocations:batch", json=["a", "b", "c"])
            assert resp.status_code == 202, resp.text
            ids = [item["task_id"] for item in resp.json()["items"]]
            parents = [wait_terminal(http, task_id) for task_id in ids]
            for task in parents:
                assert task["status"] == "Succeeded", task["error"]
                assert task["node"] == "w-1"
            # the handlers called the API back through ASYNCFN_API_URL: their children ran too
            children = [wait_terminal(http, task["result"]["child"]) for task in parents]
            assert sorted(task["result"] for task in children) == ["a", "b", "c"]
            assert {task["node"] for task in children} == {"w-1"}

            assert http.get("/healthz").json() == {"status": "ok", "node": "api-1", "role": "api"}
            stats = http.get("/v1/functions/parent/stats").json()
            assert stats["instances"]["total"] == 0, stats
        assert api.proc is not None and worker.proc is not None
        assert psutil.Process(api.proc.pid).children(recursive=True) == []
        assert psutil.Process(worker.proc.pid).children(recursive=True) != []
    finally:
        worker.stop()
        api.stop()


def test_a_worker_serves_only_the_probes(tmp_path: Path, store_url: str) -> None:
    worker = Server(
        tmp_path / "worker",
        free_port(),
        {"ASYNCFN_STORE": store_url, "ASYNCFN_API_URL": "http://api.example:8400"},
        name="w-2",
        args=["--role", "worker"],
    )
    try:
        worker.start()
        with httpx.Client(base_url=worker.url, timeout=30) as http:
            health = http.get("/healthz").json()
            assert health == {"status": "ok", "node": "w-2", "role": "worker"}
            assert http.get("/metrics").status_code == 200
            for method, path in [
                ("GET", "/v1/functions"),
                ("PUT", "/v1/functions/f"),
                ("POST", "/v1/functions/f/invocations"),
                ("POST", "/v1/functions/f/invocations:batch"),
                ("GET", "/"),
            ]:
                resp = http.request(method, path)
                assert resp.status_code == 404, (method, path, resp.text)
                error = resp.json()["error"]
                assert error["code"] == "not_served_here"
                assert "worker" in error["message"]
                assert error["api_url"] == "http://api.example:8400"
    finally:
        worker.stop()


def test_an_api_node_on_sqlite_refuses_to_start(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "asyncfn", "serve", "--role", "api", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert "role api needs a PostgreSQL store" in run.stderr
    assert not (tmp_path / "asyncfn.db").exists()
