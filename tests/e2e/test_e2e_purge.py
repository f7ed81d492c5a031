"""Purge and data minimisation against a real server: `POST /v1/tasks/{id}:purge` and functions
with `retain_payload: false`. A unique marker put in a task's payload, result, checkpoint and
logs must be gone from the API and from the store's files and tables, not merely hidden."""

from __future__ import annotations

import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.e2e.harness import Server, deploy, free_port, wait_terminal
from tests.e2e.pgdb import fresh_database
from tests.e2e.test_e2e_control import invoke, status

pytestmark = pytest.mark.timeout(90)

KEEPER = """
import json

def handler(event, context):
    marker = json.loads(event)["marker"]
    print("log line with", marker, flush=True)
    context.checkpoint({"cursor": marker})
    context.progress(0.5, "at " + marker)
    return {"echo": marker}
"""

SLOW = """
import time

def handler(event, context):
    time.sleep(60)
"""


def new_marker() -> str:
    return f"purge-marker-{uuid.uuid4().hex}"


def run_marked(http: httpx.Client, name: str, marker: str) -> dict[str, Any]:
    task_id = invoke(http, name, f'{{"marker": "{marker}"}}'.encode())
    task = wait_terminal(http, task_id)
    assert task["status"] == "Succeeded", task
    return task


def wait_logs(http: httpx.Client, task_id: str, marker: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while marker not in http.get(f"/v1/tasks/{task_id}/logs").text:
        assert time.monotonic() < deadline, "the handler's log line never arrived"
        time.sleep(0.05)


def wait_purged(http: httpx.Client, task_id: str, timeout: float = 15) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        task = dict(http.get(f"/v1/tasks/{task_id}").json())
        if task["purged_at"] is not None:
            return task
        assert time.monotonic() < deadline, f"task {task_id} was never purged"
        time.sleep(0.1)


def assert_erased(http: httpx.Client, task: dict[str, Any], marker: str) -> None:
    """The API shows nothing of the marker; the task's state history is all there."""
    shown = http.get(f"/v1/tasks/{task['id']}").json()
    assert marker not in str(shown)
    assert shown["payload"] == "" and shown["result"] is None
    assert shown["purged_at"] is not None
    assert http.get(f"/v1/tasks/{task['id']}/logs").json()["items"] == []
    statuses = [e["status"] for e in shown["events"]]
    assert statuses[:3] == ["Enqueued", "Running", "Succeeded"]
    assert shown["events"][-1]["detail"]["purged"]


def sqlite_files_bytes(data_dir: Path) -> bytes:
    """The SQLite files of a data dir after a full checkpoint (the WAL truncated)."""
    (db,) = [p for p in data_dir.glob("*.db")]
    deadline = time.monotonic() + 10
    with sqlite3.connect(db) as conn:
        while conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] != 0:
            assert time.monotonic() < deadline, "the checkpoint stayed busy"
            time.sleep(0.05)
    return b"".join(p.read_bytes() for p in data_dir.glob("*.db*"))


def test_purge_erases_a_finished_task_from_api_and_sqlite_files(
    server: Server, http: httpx.Client
) -> None:
    deploy(http, "keeper", KEEPER)
    marker = new_marker()
    task = run_marked(http, "keeper", marker)
    wait_logs(http, task["id"], marker)
    assert marker.encode() in sqlite_files_bytes(server.data_dir)  # the check can see it

    resp = http.post(f"/v1/tasks/{task['id']}:purge")

    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["task_id"] == task["id"]
    assert {"payload", "result", "checkpoint", "logs"} <= set(body["purged"])
    assert_erased(http, task, marker)
    again = http.post(f"/v1/tasks/{task['id']}:purge")
    assert again.status_code == 200 and again.json()["purged_at"] == body["purged_at"]
    assert marker.encode() not in sqlite_files_bytes(server.data_dir)


def test_purge_of_a_running_task_is_refused(server: Server, http: httpx.Client) -> None:
    deploy(http, "slow", SLOW)
    task_id = invoke(http, "slow", b"{}")
    deadline = time.monotonic() + 20
    while status(http, task_id) != "Running":
        assert time.monotonic() < deadline
        time.sleep(0.02)

    resp = http.post(f"/v1/tasks/{task_id}:purge")

    assert resp.status_code == 409, resp.text
    assert resp.json()["error"]["code"] == "transition_refused"
    assert http.get(f"/v1/tasks/{task_id}").json()["payload"] == "{}"
    assert http.post(f"/v1/tasks/{task_id}:stop").status_code == 200
    assert http.post("/v1/tasks/nope:purge").status_code == 404


def test_retain_payload_false_purges_at_the_end(server: Server, http: httpx.Client) -> None:
    function = deploy(http, "forgetful", KEEPER, retain_payload=False)
    assert function["retain_payload"] is False
    marker = new_marker()

    task = run_marked(http, "forgetful", marker)

    purged = wait_purged(http, task["id"])
    assert purged["status"] == "Succeeded"
    assert_erased(http, task, marker)
    assert marker.encode() not in sqlite_files_bytes(server.data_dir)


def test_purged_data_is_in_no_postgres_table_after_vacuum(tmp_path: Path) -> None:
    with fresh_database("asyncfn_e2e_purge") as url:
        server = Server(tmp_path / "data", free_port(), {"ASYNCFN_STORE": url}).start()
        try:
            with httpx.Client(base_url=server.url, timeout=30) as http:
                deploy(http, "keeper", KEEPER)
                marker = new_marker()
                task = run_marked(http, "keeper", marker)
                wait_logs(http, task["id"], marker)
                assert pg_rows_with(url, marker) > 0  # the scan can see it
                assert http.post(f"/v1/tasks/{task['id']}:purge").status_code == 200
                assert_erased(http, task, marker)
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute("VACUUM (FULL) tasks, task_logs, attempts")
                assert pg_rows_with(url, marker) == 0
        finally:
            server.stop()


def pg_rows_with(url: str, marker: str) -> int:
    """Rows of any table of the public schema whose text (bytea decoded too) holds `marker`."""
    found = 0
    with psycopg.connect(url, autocommit=True) as conn:
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        ]
        for table in tables:
            sql = f'SELECT count(*) FROM "{table}" t WHERE t::text LIKE %s'
            row = conn.execute(sql.encode(), (f"%{marker}%",)).fetchone()
            found += int(row[0]) if row else 0
        # bytea renders as hex in a row's text: the payload is checked decoded.
        row = conn.execute(
            "SELECT count(*) FROM tasks WHERE position(%s::bytea in payload) > 0",
            (marker.encode(),),
        ).fetchone()
        found += int(row[0]) if row else 0
    return found
