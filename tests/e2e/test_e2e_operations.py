"""Bulk operations against a real server: `POST /v1/tasks:stop|:rerun|:purge` over a filter,
the dry-run count, the tracked operation (`GET /v1/operations/{id}`) to its end, validation
errors, and the CLI's `stop-all` / `operations` verbs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.harness import Server, deploy, free_port, wait_terminal
from tests.e2e.pgdb import fresh_database
from tests.e2e.test_e2e_control import invoke, status, wait_pid

pytestmark = pytest.mark.timeout(120)

NOOP = "def handler(event, context):\n    return None\n"
FAILS_ON_BAD = """
def handler(event, context):
    if event == b"bad":
        raise ValueError("bad input")
    return "ok"
"""
SLOW = """
import os, time

def handler(event, context):
    with open(event.decode(), "w") as f:
        f.write(str(os.getpid()))
    time.sleep(60)
"""


def submit(http: httpx.Client, name: str, count: int, body: str = "") -> list[str]:
    ids: list[str] = []
    while count > 0:
        n = min(count, 1000)
        resp = http.post(f"/v1/functions/{name}/invocations:batch", json=[body] * n)
        assert resp.status_code == 202, resp.text
        ids += [item["task_id"] for item in resp.json()["items"]]
        count -= n
    return ids


def paused(http: httpx.Client, name: str, code: str = NOOP) -> None:
    deploy(http, name, code)
    assert http.post(f"/v1/functions/{name}:suspend").status_code == 200


def bulk(http: httpx.Client, kind: str, dry_run: bool = False, **filter: Any) -> httpx.Response:
    return http.post(f"/v1/tasks:{kind}", json={"filter": filter, "dry_run": dry_run})


def count(http: httpx.Client, kind: str, **filter: Any) -> int:
    resp = bulk(http, kind, dry_run=True, **filter)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["dry_run"] is True and body["kind"] == kind
    return int(body["count"])


def started(http: httpx.Client, kind: str, **filter: Any) -> dict[str, Any]:
    resp = bulk(http, kind, **filter)
    assert resp.status_code == 202, resp.text
    op: dict[str, Any] = resp.json()["operation"]
    assert resp.headers["location"] == f"/v1/operations/{op['id']}"
    assert op["kind"] == kind and op["status"] == "running"
    return op


def wait_op(http: httpx.Client, op_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        op: dict[str, Any] = http.get(f"/v1/operations/{op_id}").json()
        if op["status"] != "running":
            return op
        assert time.monotonic() < deadline, f"operation still running: {op}"
        time.sleep(0.05)


def statuses(http: httpx.Client, function: str) -> dict[str, int]:
    seen: dict[str, int] = {}
    cursor = None
    while True:
        params = {"function": function, "limit": "1000", **({"cursor": cursor} if cursor else {})}
        page = http.get("/v1/tasks", params=params).json()
        for task in page["items"]:
            seen[task["status"]] = seen.get(task["status"], 0) + 1
        cursor = page["next_cursor"]
        if cursor is None:
            return seen


def test_bulk_stop_of_queued_tasks_leaves_other_functions_alone(http: httpx.Client) -> None:
    paused(http, "queued")
    paused(http, "other")
    submit(http, "queued", 2000)
    submit(http, "other", 10)

    assert count(http, "stop", function="queued", status=["Enqueued"]) == 2000
    assert count(http, "stop", function="queued", status=["Failed"]) == 0
    assert count(http, "rerun", function="queued") == 0
    op = started(http, "stop", function="queued", status=["Enqueued"])
    assert op["total"] == 2000
    assert op["filter"] == {"function": "queued", "status": ["Enqueued"]}

    ended = wait_op(http, op["id"])

    assert ended["status"] == "succeeded", ended
    assert (ended["total"], ended["done"], ended["skipped"]) == (2000, 2000, 0)
    assert ended["finished_at"] is not None and ended["error"] is None
    assert statuses(http, "queued") == {"Stopped": 2000}
    assert statuses(http, "other") == {"Enqueued": 10}
    assert count(http, "stop", function="queued") == 0
    listed = http.get("/v1/operations", params={"limit": "5"}).json()["items"]
    assert listed[0]["id"] == op["id"]


def test_bulk_stop_includes_a_running_task(http: httpx.Client, tmp_path: Path) -> None:
    deploy(http, "slow", SLOW)
    pid_file = tmp_path / "pid"
    running = invoke(http, "slow", str(pid_file).encode())
    pid = wait_pid(pid_file)
    assert status(http, running) == "Running"

    op = started(http, "stop", function="slow")
    ended = wait_op(http, op["id"])

    assert (ended["status"], ended["done"], ended["total"]) == ("succeeded", 1, 1)
    assert wait_terminal(http, running)["status"] == "Stopped"
    deadline = time.monotonic() + 10
    while _alive(pid):
        assert time.monotonic() < deadline, "the stopped task's process is still alive"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (the node has not reaped it yet) is gone as far as the handler goes.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split()[2] != "Z"


def test_bulk_rerun_of_failed_tasks_then_bulk_purge(http: httpx.Client) -> None:
    deploy(http, "flaky", FAILS_ON_BAD, **{"async": {"max_retries": 0}})
    bad = [invoke(http, "flaky", b"bad") for _ in range(3)]
    good = invoke(http, "flaky", b"fine")
    for task_id in [*bad, good]:
        wait_terminal(http, task_id)

    assert count(http, "rerun", function="flaky", status=["Failed"]) == 3
    op = wait_op(http, started(http, "rerun", function="flaky", status=["Failed"])["id"])

    assert (op["status"], op["done"], op["skipped"]) == ("succeeded", 3, 0)
    tasks = http.get("/v1/tasks", params={"function": "flaky"}).json()["items"]
    reruns = [t for t in tasks if t["rerun_of"] is not None]
    assert sorted(t["rerun_of"] for t in reruns) == sorted(bad)
    for task in reruns:
        assert wait_terminal(http, task["id"])["status"] == "Failed"

    # Purge every ended task of the function: the 3 originals, their reruns and the good one.
    assert count(http, "purge", function="flaky") == 7
    purged = wait_op(http, started(http, "purge", function="flaky")["id"])
    assert (purged["status"], purged["done"]) == ("succeeded", 7)
    for task_id in [*bad, good]:
        task = http.get(f"/v1/tasks/{task_id}").json()
        assert task["purged_at"] is not None and task["payload"] == ""
    assert count(http, "purge", function="flaky") == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"filter": {}}, "filter"),
        ({}, "filter"),
        ({"filter": {"status": ["Nope"]}}, "filter.status.0"),
        ({"filter": {"function": "f", "created_after": "yesterday"}}, "filter.created_after"),
        ({"filter": {"labels": {"a": 1}}}, "filter.labels.a"),
        ({"filter": {"function": "f", "colour": "red"}}, "filter.colour"),
        ({"filter": {"all": True}, "dry_run": "maybe"}, "dry_run"),
    ],
)
def test_bad_filters_are_refused_naming_the_field(
    http: httpx.Client, body: dict[str, Any], field: str
) -> None:
    resp = http.post("/v1/tasks:stop", json=body)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["field"] == field


def test_unknown_operation_and_single_task_routes_still_resolve(http: httpx.Client) -> None:
    resp = http.get("/v1/operations/op_nope")
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "operation_not_found"
    paused(http, "one")
    (task_id,) = submit(http, "one", 1)
    stopped = http.post(f"/v1/tasks/{task_id}:stop")
    assert stopped.status_code == 200 and stopped.json()["status"] == "Stopped"
    assert count(http, "stop", all=True) == 0


def cli(server: Server, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "asyncfn", "--url", server.url, *args],
        capture_output=True,
        text=True,
        timeout=60,
        input=stdin,
    )


def test_cli_stop_all_dry_run_confirmation_and_progress(server: Server, http: httpx.Client) -> None:
    paused(http, "cli")
    submit(http, "cli", 300)

    dry = cli(server, "stop-all", "--function", "cli", "--status", "Enqueued", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.strip() == "300"
    declined = cli(server, "stop-all", "--function", "cli", stdin="n\n")
    assert declined.returncode == 1 and "300" in declined.stderr
    assert count(http, "stop", function="cli") == 300
    empty = cli(server, "stop-all")
    assert empty.returncode == 2

    done = cli(server, "stop-all", "--function", "cli", "--yes")
    assert done.returncode == 0, done.stderr
    op_id, state = done.stdout.split()[:2]
    assert state == "succeeded:" and "300 done, 0 skipped" in done.stdout
    assert statuses(http, "cli") == {"Stopped": 300}

    shown = cli(server, "operations", "get", op_id)
    assert shown.returncode == 0 and '"done": 300' in shown.stdout
    listed = cli(server, "operations", "list")
    assert listed.returncode == 0 and op_id in listed.stdout
    assert cli(server, "operations", "get", "op_nope").returncode == 1


def test_operation_survives_a_restart(tmp_path: Path) -> None:
    """A node killed (SIGKILL) in the middle of an operation: the restarted node goes on from
    the saved cursor, and every task ends Stopped once."""
    srv = Server(tmp_path / "data", free_port()).start()
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as http:
            paused(http, "big")
            submit(http, "big", 5000)
            op = started(http, "stop", function="big")
            while op["done"] == 0 and op["status"] == "running":
                op = http.get(f"/v1/operations/{op['id']}").json()
        srv.kill()
        srv.start()
        with httpx.Client(base_url=srv.url, timeout=30) as http:
            ended = wait_op(http, op["id"])
            assert (ended["status"], ended["total"]) == ("succeeded", 5000)
            assert ended["done"] + ended["skipped"] == 5000
            assert ended["done"] >= op["done"]
            assert statuses(http, "big") == {"Stopped": 5000}
        if op["status"] == "running":  # killed mid-walk: the new run began past row 0
            resumed = [line for line in srv.log().splitlines() if "from row" in line]
            assert len(resumed) == 2 and not resumed[1].endswith("from row None"), resumed
    finally:
        srv.stop()


def test_on_postgresql_an_api_nodes_operation_is_run_by_a_worker(tmp_path: Path) -> None:
    """An `api` node creates the operation; the worker node (on the same database) runs it,
    stopping the queued tasks in batches and the running one through its instance."""
    with fresh_database() as store_url:
        env = {"ASYNCFN_STORE": store_url}
        api = Server(tmp_path / "api", free_port(), env, name="api-1", args=["--role", "api"])
        worker = Server(tmp_path / "w", free_port(), {**env, "ASYNCFN_ROLE": "worker"}, name="w-1")
        try:
            api.start()
            with httpx.Client(base_url=api.url, timeout=30) as http:
                deploy(http, "slow", SLOW)
                worker.start()
                pid_file = tmp_path / "pid"
                running = invoke(http, "slow", str(pid_file).encode())
                wait_pid(pid_file)
                assert http.post("/v1/functions/slow:suspend").status_code == 200
                submit(http, "slow", 1500, str(tmp_path / "never"))
                assert count(http, "stop", function="slow") == 1501

                ended = wait_op(http, started(http, "stop", function="slow")["id"])

                assert (ended["status"], ended["total"]) == ("succeeded", 1501), ended
                assert ended["done"] == 1501
                assert wait_terminal(http, running)["status"] == "Stopped"
                assert statuses(http, "slow") == {"Stopped": 1501}
        finally:
            worker.stop()
            api.stop()
