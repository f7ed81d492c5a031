"""A 202 means durable: kill -9 the node mid-work, restart it, and every task ends exactly once."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx

from tests.e2e.harness import TERMINAL, Server, deploy, free_port, wait_terminal

SLOW = """
import os, time

def handler(event, context):
    with open(os.path.join({pids!r}, str(os.getpid())), "w") as f:
        f.write(context.task_id)
    time.sleep(0.3)
    return context.attempt
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_kill_9_loses_no_accepted_task_and_orphans_no_instance(tmp_path: Path) -> None:
    pids_dir = tmp_path / "pids"
    pids_dir.mkdir()
    data = tmp_path / "data"
    srv = Server(data, free_port()).start()
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as http:
            deploy(
                http,
                "slow",
                SLOW.format(pids=str(pids_dir)),
                max_instances=2,
                **{"async": {"max_retries": 2, "retry_backoff": {"base_s": 0.05}}},
            )
            resp = http.post("/v1/functions/slow/invocations:batch", json=list(range(30)))
            ids = [item["task_id"] for item in resp.json()["items"]]
            deadline = time.monotonic() + 20
            while len(list(pids_dir.iterdir())) < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
            running = [t for t in ids if http.get(f"/v1/tasks/{t}").json()["status"] == "Running"]
        assert running, "some tasks should be running when the node is killed"
        srv.kill()
        instance_pids = [int(p.name) for p in pids_dir.iterdir()]
        deadline = time.monotonic() + 2
        while any(alive(pid) for pid in instance_pids) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not [pid for pid in instance_pids if alive(pid)], "instances outlived their node"
    finally:
        srv.stop()

    again = Server(data, free_port()).start()
    try:
        with httpx.Client(base_url=again.url, timeout=30) as http:
            final = {t: wait_terminal(http, t, timeout=60) for t in ids}
        assert {task["status"] for task in final.values()} <= TERMINAL
        assert all(task["status"] == "Succeeded" for task in final.values())
        for task_id in running:
            events = final[task_id]["events"]
            lost = [e for e in events if e["status"] == "Retrying"]
            assert lost and lost[0]["detail"]["error"]["type"] == "NodeLost", events
            assert final[task_id]["attempt"] >= 2
        for task in final.values():
            terminal = [e for e in task["events"] if e["status"] in TERMINAL]
            assert len(terminal) == 1
    finally:
        again.stop()


def test_sigterm_shuts_down_cleanly_and_queued_work_survives(tmp_path: Path) -> None:
    data = tmp_path / "data"
    srv = Server(data, free_port()).start()
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as http:
            deploy(http, "later", "def handler(e, c):\n    return 'done'\n")
            resp = http.post(
                "/v1/functions/later/invocations", content=b"x", headers={"X-Delay-Seconds": "1"}
            )
            task_id = resp.json()["task_id"]
    finally:
        assert srv.stop() == 0
    again = Server(data, free_port()).start()
    try:
        with httpx.Client(base_url=again.url, timeout=30) as http:
            assert wait_terminal(http, task_id)["result"] == "done"
    finally:
        again.stop()
