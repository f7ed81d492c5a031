"""Task control against real instance processes: stop, suspend/resume, pause, expiry, rerun,
checkpoints and priority."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import httpx

from tests.e2e.harness import Server, deploy, free_port, wait_terminal

SLEEPER = """
import os, time

def handler(event, context):
    with open(event.decode(), "w") as f:
        f.write(str(os.getpid()))
    time.sleep(60)
"""

STUBBORN = """
import os, signal, time

def handler(event, context):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with open(event.decode(), "w") as f:
        f.write(str(os.getpid()))
    time.sleep(60)
"""


def invoke(http: httpx.Client, name: str, body: bytes = b"", **headers: str) -> str:
    resp = http.post(f"/v1/functions/{name}/invocations", content=body, headers=headers)
    assert resp.status_code == 202, resp.text
    return str(resp.json()["task_id"])


def status(http: httpx.Client, task_id: str) -> str:
    return str(http.get(f"/v1/tasks/{task_id}").json()["status"])


def wait_pid(path: Path, timeout: float = 20) -> int:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text()):
        assert time.monotonic() < deadline, "the handler never started"
        time.sleep(0.01)
    return int(path.read_text())


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def proc_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]


def wait_proc_state(pid: int, wanted: str, timeout: float = 5) -> str:
    """The process state once it is `wanted`, or the last one seen when `timeout` runs out:
    a signal is delivered when the target is next scheduled, not when kill() returns."""
    deadline = time.monotonic() + timeout
    seen = proc_state(pid)
    while seen != wanted and time.monotonic() < deadline:
        time.sleep(0.005)
        seen = proc_state(pid)
    return seen


def test_stop_running_task_kills_process_group_and_ends_stopped(
    http: httpx.Client, tmp_path: Path
) -> None:
    deploy(http, "sleeper", SLEEPER)
    pid_file = tmp_path / "pid"
    task_id = invoke(http, "sleeper", str(pid_file).encode())
    pid = wait_pid(pid_file)
    resp = http.post(f"/v1/tasks/{task_id}:stop")
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"task_id": task_id, "status": "Stopped"}
    assert not alive(pid)
    task = http.get(f"/v1/tasks/{task_id}").json()
    statuses = [e["status"] for e in task["events"]]
    assert statuses[-2:] == ["Stopping", "Stopped"]
    assert task["events"][-2]["detail"]["by"] == "api"
    assert task["attempt"] == 1
    logs = http.get(f"/v1/tasks/{task_id}/logs").json()["items"]
    assert any("stop requested by api" in item["line"] for item in logs)
    again = http.post(f"/v1/tasks/{task_id}:stop")
    assert again.status_code == 409
    assert again.json()["error"]["status"] == "Stopped"


def test_stop_kills_a_handler_that_ignores_sigterm_after_the_grace(
    http: httpx.Client, tmp_path: Path
) -> None:
    deploy(http, "stubborn", STUBBORN, stop_grace_s=0.3)
    pid_file = tmp_path / "pid"
    task_id = invoke(http, "stubborn", str(pid_file).encode())
    pid = wait_pid(pid_file)
    started = time.monotonic()
    resp = http.post(f"/v1/tasks/{task_id}:stop")
    assert resp.json()["status"] == "Stopped"
    assert time.monotonic() - started >= 0.25
    assert not alive(pid)


def test_stopped_delayed_task_never_runs_even_across_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    srv = Server(data, free_port()).start()
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as http:
            deploy(http, "later", "def handler(e, c):\n    return 'ran'\n")
            task_id = invoke(http, "later", b"", **{"X-Delay-Seconds": "1"})
            resp = http.post(f"/v1/tasks/{task_id}:stop")
            assert resp.json()["status"] == "Stopped"
    finally:
        srv.kill()
    again = Server(data, free_port()).start()
    try:
        with httpx.Client(base_url=again.url, timeout=30) as http:
            time.sleep(1.5)
            task = http.get(f"/v1/tasks/{task_id}").json()
            assert task["status"] == "Stopped" and task["attempt"] == 0
            assert task["result"] is None
    finally:
        again.stop()


def test_suspended_running_task_is_frozen_and_its_timeout_paused(
    http: httpx.Client, tmp_path: Path
) -> None:
    code = (
        "import os, time\n"
        "def handler(event, context):\n"
        "    open(event.decode(), 'w').write(str(os.getpid()))\n"
        "    time.sleep(1.5)\n"
        "    return 'finished'\n"
    )
    deploy(http, "freezer", code, timeout_s=3)
    pid_file = tmp_path / "pid"
    task_id = invoke(http, "freezer", str(pid_file).encode())
    pid = wait_pid(pid_file)
    assert http.post(f"/v1/tasks/{task_id}:suspend").json()["status"] == "Suspended"
    assert wait_proc_state(pid, "T") == "T"
    time.sleep(3.5)  # longer than the timeout: suspended time does not count
    assert status(http, task_id) == "Suspended"
    assert http.post(f"/v1/tasks/{task_id}:resume").json()["status"] == "Running"
    task = wait_terminal(http, task_id)
    assert task["status"] == "Succeeded", task["error"]
    assert task["result"] == "finished"
    statuses = [e["status"] for e in task["events"]]
    assert statuses == ["Enqueued", "Running", "Suspended", "Running", "Succeeded"]


def test_suspended_queued_task_is_held_until_resumed(http: httpx.Client) -> None:
    deploy(http, "held", "def handler(e, c):\n    return c.attempt\n")
    task_id = invoke(http, "held", b"", **{"X-Delay-Seconds": "0.3"})
    assert http.post(f"/v1/tasks/{task_id}:suspend").json()["status"] == "Suspended"
    time.sleep(0.8)
    task = http.get(f"/v1/tasks/{task_id}").json()
    assert task["status"] == "Suspended" and task["attempt"] == 0
    assert http.post(f"/v1/tasks/{task_id}:resume").json()["status"] == "Enqueued"
    assert wait_terminal(http, task_id)["result"] == 1
    bad = http.post(f"/v1/tasks/{task_id}:suspend")
    assert bad.status_code == 409 and bad.json()["error"]["code"] == "transition_refused"


def test_paused_function_accepts_but_does_not_dispatch(http: httpx.Client) -> None:
    deploy(http, "paused", "def handler(e, c):\n    return 'ok'\n")
    assert http.post("/v1/functions/paused:suspend").json()["paused"] is True
    task_id = invoke(http, "paused")
    time.sleep(0.5)
    assert status(http, task_id) == "Enqueued"
    assert http.post("/v1/functions/paused:resume").json()["paused"] is False
    assert wait_terminal(http, task_id)["status"] == "Succeeded"


def test_task_older_than_max_event_age_expires_without_running(http: httpx.Client) -> None:
    deploy(
        http, "stale", "def handler(e, c):\n    return 'ran'\n", **{"async": {"max_event_age_s": 1}}
    )
    http.post("/v1/functions/stale:suspend")
    task_id = invoke(http, "stale")
    task = wait_terminal(http, task_id, timeout=10)
    assert task["status"] == "Expired"
    assert task["attempt"] == 0 and task["result"] is None
    assert task["error"]["type"] == "Expired"


def test_rerun_makes_a_linked_task_with_the_same_payload(http: httpx.Client) -> None:
    deploy(http, "echo", "def handler(e, c):\n    return e.decode()\n")
    first = invoke(http, "echo", b"again please")
    wait_terminal(http, first)
    resp = http.post(f"/v1/tasks/{first}:rerun", headers={"X-Task-Id": "the-rerun"})
    assert resp.status_code == 202, resp.text
    assert resp.json() == {"task_id": "the-rerun", "status": "Enqueued", "rerun_of": first}
    task = wait_terminal(http, "the-rerun")
    assert task["result"] == "again please" and task["rerun_of"] == first
    dup = http.post(f"/v1/tasks/{first}:rerun", headers={"X-Task-Id": "the-rerun"})
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "duplicate_task"


def test_rerun_of_a_running_task_is_refused(http: httpx.Client, tmp_path: Path) -> None:
    deploy(http, "sleeper", SLEEPER)
    pid_file = tmp_path / "pid"
    task_id = invoke(http, "sleeper", str(pid_file).encode())
    wait_pid(pid_file)
    resp = http.post(f"/v1/tasks/{task_id}:rerun")
    assert resp.status_code == 409
    assert resp.json()["error"]["status"] == "Running"
    http.post(f"/v1/tasks/{task_id}:stop")


def test_retry_after_a_crash_resumes_from_the_last_checkpoint(http: httpx.Client) -> None:
    code = (
        "import os\n"
        "def handler(event, context):\n"
        "    done = (context.last_checkpoint or {}).get('done', 0)\n"
        "    for step in range(done, 10):\n"
        "        context.checkpoint({'done': step + 1})\n"
        "        context.progress((step + 1) / 10, f'step {step + 1}')\n"
        "        if step == 4 and context.attempt == 1:\n"
        "            import time; time.sleep(0.3)\n"
        "            os._exit(9)\n"
        "    return {'resumed_from': done, 'attempt': context.attempt}\n"
    )
    deploy(http, "etl", code, **{"async": {"retry_backoff": {"base_s": 0.05}}})
    task = wait_terminal(http, invoke(http, "etl"))
    assert task["status"] == "Succeeded", task["error"]
    assert task["result"] == {"resumed_from": 5, "attempt": 2}
    assert task["progress"] == {"fraction": 1.0, "message": "step 10"}


def test_higher_priority_runs_first_fifo_within_a_priority(
    http: httpx.Client, tmp_path: Path
) -> None:
    code = (
        "import os, time\n"
        "def handler(event, context):\n"
        "    if event.startswith(b'/'):\n"
        "        open(event.decode(), 'w').write(str(os.getpid()))\n"
        "        time.sleep(0.5)\n"
        "    return time.time()\n"
    )
    deploy(http, "ordered", code, max_instances=1)
    pid_file = tmp_path / "pid"
    blocker = invoke(http, "ordered", str(pid_file).encode())
    wait_pid(pid_file)
    ids = {
        name: invoke(http, "ordered", name.encode(), **{"X-Priority": str(prio)})
        for name, prio in [("low", -5), ("mid-1", 0), ("high", 7), ("mid-2", 0)]
    }
    wait_terminal(http, blocker)
    ended = {name: wait_terminal(http, task_id)["result"] for name, task_id in ids.items()}
    assert sorted(ended, key=lambda n: ended[n]) == ["high", "mid-1", "mid-2", "low"]


TERMINAL = {"Succeeded", "Failed", "Stopped", "Expired", "Invalid"}


def test_stop_racing_a_finishing_attempt_ends_in_exactly_one_terminal_state(
    http: httpx.Client,
) -> None:
    deploy(
        http,
        "quick",
        "import time\ndef handler(e, c):\n    time.sleep(float(e))\n    return 'done'\n",
        max_instances=2,
    )
    rng = random.Random(5)
    outcomes = []
    for i in range(30):
        task_id = invoke(http, "quick", str(rng.uniform(0, 0.03)).encode())
        time.sleep(rng.uniform(0, 0.03) if i % 3 else 0)
        outcomes.append((task_id, http.post(f"/v1/tasks/{task_id}:stop")))
    for task_id, resp in outcomes:
        task = wait_terminal(http, task_id)
        ends = [e["status"] for e in task["events"] if e["status"] in TERMINAL]
        assert len(ends) == 1, task["events"]
        if resp.status_code == 200:
            assert resp.json()["status"] == "Stopped" and task["status"] == "Stopped"
        else:
            assert resp.status_code == 409 and task["status"] == "Succeeded"
            assert resp.json()["error"]["status"] == "Succeeded"


def test_suspend_racing_dispatch_then_resume_runs_each_task_once(http: httpx.Client) -> None:
    deploy(
        http,
        "counted",
        "import time\ndef handler(e, c):\n    time.sleep(0.01)\n    return c.attempt\n",
        max_instances=2,
    )
    ids = [invoke(http, "counted") for _ in range(20)]
    suspended = [t for t in ids if http.post(f"/v1/tasks/{t}:suspend").status_code == 200]
    for task_id in suspended:
        resumed = http.post(f"/v1/tasks/{task_id}:resume")
        if resumed.status_code == 409:  # its attempt had ended as the freeze came: Succeeded
            assert resumed.json()["error"]["status"] == "Succeeded"
        else:
            assert resumed.status_code == 200, resumed.text
    for task_id in ids:
        task = wait_terminal(http, task_id)
        assert task["status"] == "Succeeded" and task["result"] == 1, task
        assert [e["status"] for e in task["events"]].count("Succeeded") == 1
