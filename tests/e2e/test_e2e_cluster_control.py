"""Two real nodes on one PostgreSQL database: a function deployed, re-coded or paused through
node A reaches node B at once, and a stop, suspend or resume through A reaches the task B runs
(PostgreSQL only: skipped without ASYNCFN_TEST_PG_DSN)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.harness import Server, deploy, free_port, make_zip, wait_terminal
from tests.e2e.pgdb import fresh_database
from tests.e2e.test_e2e_control import (
    SLEEPER,
    alive,
    invoke,
    proc_state,
    status,
    wait_pid,
    wait_proc_state,
)

pytestmark = [pytest.mark.postgres]

REACH_S = 5.0
"""How long a change through one node may take to reach the other (it takes milliseconds)."""

Nodes = tuple[httpx.Client, httpx.Client]


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[Nodes]:
    """Clients of node A and node B, two processes on one fresh database."""
    with fresh_database("asyncfn_e2e_cluster") as url:
        servers = [
            Server(
                tmp_path / name / "data",
                free_port(),
                {"ASYNCFN_STORE": url},
                name=name,
                args=("--label", f"node={name}"),
            )
            for name in ("node-a", "node-b")
        ]
        for server in servers:
            (tmp_path / server.name).mkdir()
        try:
            for server in servers:
                server.start()
            with (
                httpx.Client(base_url=servers[0].url, timeout=30) as a,
                httpx.Client(base_url=servers[1].url, timeout=30) as b,
            ):
                yield a, b
        finally:
            for server in servers:
                server.stop()


def eventually(check: Callable[[], Any], within_s: float = REACH_S) -> Any:
    """`check()`'s first truthy answer, polled until `within_s` runs out."""
    deadline = time.monotonic() + within_s
    while True:
        answer = check()
        if answer:
            return answer
        assert time.monotonic() < deadline, f"not within {within_s}s"
        time.sleep(0.01)


def known(http: httpx.Client, name: str, **fields: Any) -> bool:
    """The node's catalog has function `name`, with `fields` as given."""
    resp = http.get(f"/v1/functions/{name}")
    if resp.status_code != 200:
        return False
    spec = resp.json()
    return all(spec.get(key) == value for key, value in fields.items())


def ran_on(http: httpx.Client, task_id: str) -> str | None:
    node = http.get(f"/v1/tasks/{task_id}").json().get("node")
    return None if node is None else str(node)


def running_on_b(a: httpx.Client, b: httpx.Client, name: str, code: str, folder: Path) -> str:
    """Deploy `name` through A, for node B only (placement labels), and submit it through A:
    answers the task id once B runs it. Its handler writes its pid to `folder / "pid"`."""
    deploy(a, name, code, stop_grace_s=1, timeout_s=60, requires={"node": "node-b"})
    eventually(lambda: known(b, name, code_sha256=known_sha(a, name)))
    pid_file = folder / "pid"
    task_id = invoke(a, name, str(pid_file).encode())
    wait_pid(pid_file)
    assert ran_on(a, task_id) == "node-b"
    return task_id


def known_sha(http: httpx.Client, name: str) -> str:
    return str(http.get(f"/v1/functions/{name}").json()["code_sha256"])


def version(tag: str) -> str:
    return f"def handler(event, context):\n    return {tag!r}\n"


def test_a_function_deployed_through_one_node_runs_through_the_other(nodes: Nodes) -> None:
    a, b = nodes
    deploy(a, "echo", version("v1"))

    eventually(lambda: known(b, "echo", code_sha256=known_sha(a, "echo")))
    first = invoke(b, "echo")
    assert wait_terminal(b, first)["result"] == "v1"

    resp = a.put("/v1/functions/echo/code", content=make_zip({"main.py": version("v2")}))
    assert resp.status_code == 200, resp.text
    eventually(lambda: known(b, "echo", code_sha256=resp.json()["sha256"]))
    on_b = 0
    for _ in range(30):  # until B (whose pool restarts with the new code) has run two
        task = wait_terminal(b, invoke(b, "echo"))
        assert task["result"] == "v2", task
        on_b += task["node"] == "node-b"
        if on_b == 2:
            return
    raise AssertionError("node B ran none of the tasks submitted through it")


def test_a_function_deleted_through_one_node_is_gone_on_the_other(nodes: Nodes) -> None:
    a, b = nodes
    deploy(a, "brief", version("v1"))
    eventually(lambda: known(b, "brief"))

    assert a.delete("/v1/functions/brief").status_code in (200, 204)

    eventually(lambda: b.get("/v1/functions/brief").status_code == 404)
    resp = b.post("/v1/functions/brief/invocations", content=b"")
    assert resp.status_code == 404, resp.text


def test_a_stop_through_one_node_ends_the_task_another_node_runs(
    nodes: Nodes, tmp_path: Path
) -> None:
    a, b = nodes
    task_id = running_on_b(a, b, "sleeper", SLEEPER, tmp_path)
    pid = int((tmp_path / "pid").read_text())

    started = time.monotonic()
    resp = a.post(f"/v1/tasks/{task_id}:stop")

    assert resp.status_code == 200, resp.text
    assert resp.json() == {"task_id": task_id, "status": "Stopped"}
    assert time.monotonic() - started < 2.0  # SIGTERM ends the sleeper at once: no grace wait
    eventually(lambda: not alive(pid))
    task = b.get(f"/v1/tasks/{task_id}").json()
    assert [e["status"] for e in task["events"]][-2:] == ["Stopping", "Stopped"]
    assert task["events"][-2]["detail"]["by"] == "api"


def test_suspend_and_resume_through_one_node_freeze_and_thaw_the_task_another_node_runs(
    nodes: Nodes, tmp_path: Path
) -> None:
    a, b = nodes
    code = (
        "import os, time\n"
        "def handler(event, context):\n"
        "    open(event.decode(), 'w').write(str(os.getpid()))\n"
        "    time.sleep(1.0)\n"
        "    return 'finished'\n"
    )
    task_id = running_on_b(a, b, "freezer", code, tmp_path)
    pid = int((tmp_path / "pid").read_text())

    assert a.post(f"/v1/tasks/{task_id}:suspend").json()["status"] == "Suspended"
    assert wait_proc_state(pid, "T") == "T"
    time.sleep(1.5)  # longer than the handler's sleep: a frozen handler does not finish
    assert status(a, task_id) == "Suspended"
    assert proc_state(pid) == "T"

    assert a.post(f"/v1/tasks/{task_id}:resume").json()["status"] == "Running"
    assert wait_proc_state(pid, "S") in ("S", "R")
    task = wait_terminal(a, task_id)
    assert task["status"] == "Succeeded", task["error"]
    assert task["result"] == "finished" and task["node"] == "node-b"
    statuses = [e["status"] for e in task["events"]]
    assert statuses == ["Enqueued", "Running", "Suspended", "Running", "Succeeded"]


def test_a_function_paused_through_one_node_is_not_dispatched_by_the_other(
    nodes: Nodes,
) -> None:
    a, b = nodes
    deploy(a, "held", version("ran"))
    eventually(lambda: known(b, "held"))

    assert a.post("/v1/functions/held:suspend").json()["paused"] is True
    eventually(lambda: known(b, "held", paused=True))
    task_id = invoke(b, "held")
    time.sleep(1.0)
    assert status(b, task_id) == "Enqueued"

    assert a.post("/v1/functions/held:resume").json()["paused"] is False
    assert wait_terminal(b, task_id)["status"] == "Succeeded"
