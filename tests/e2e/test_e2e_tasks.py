"""A real server: deploy, invoke, and watch tasks run in real instances to their end state."""

from __future__ import annotations

import httpx

from tests.e2e.harness import deploy, wait_terminal

ECHO = """
import json, sys

def handler(event, context):
    print("got", len(event), "bytes")
    print("to stderr", file=sys.stderr)
    context.logger.info("via the logger")
    return {"echo": json.loads(event), "task": context.task_id, "attempt": context.attempt}
"""

FAIL_TWICE = """
def handler(event, context):
    if context.attempt < 3:
        raise ValueError(f"attempt {context.attempt} fails")
    return "third time lucky"
"""

FAST_RETRY = {"async": {"max_retries": 3, "retry_backoff": {"base_s": 0.05, "max_s": 0.1}}}


def invoke(http: httpx.Client, name: str, body: bytes = b"{}", **headers: str) -> str:
    resp = http.post(
        f"/v1/functions/{name}/invocations",
        content=body,
        headers={"X-Invocation-Type": "Async", **headers},
    )
    assert resp.status_code == 202, resp.text
    assert resp.json()["status"] == "Enqueued"
    return str(resp.json()["task_id"])


def test_async_invocation_runs_to_succeeded_with_result_events_and_logs(http: httpx.Client) -> None:
    deploy(http, "echo", ECHO)
    task_id = invoke(http, "echo", b'{"n": 1}')
    task = wait_terminal(http, task_id)
    assert task["status"] == "Succeeded", task
    assert task["result"] == {"echo": {"n": 1}, "task": task_id, "attempt": 1}
    assert task["payload"] == '{"n": 1}'
    assert [e["status"] for e in task["events"]] == ["Enqueued", "Running", "Succeeded"]
    assert task["duration_ms"] is not None and task["duration_ms"] >= 0
    assert task["started_at"] <= task["finished_at"]
    assert task["instance_id"]
    logs = http.get(f"/v1/tasks/{task_id}/logs").json()
    lines = {(item["stream"], item["line"]) for item in logs["items"]}
    assert ("stdout", "got 8 bytes") in lines
    assert ("stderr", "to stderr") in lines
    assert any(line.endswith("via the logger") for _, line in lines)


def test_instance_is_warm_and_reused_across_tasks(http: httpx.Client) -> None:
    deploy(http, "pid", "import os\ndef handler(e, c):\n    return os.getpid()\n", max_instances=1)
    pids = {wait_terminal(http, invoke(http, "pid"))["result"] for _ in range(5)}
    assert len(pids) == 1


def test_raised_exception_is_retried_then_succeeds(http: httpx.Client) -> None:
    deploy(http, "flaky", FAIL_TWICE, **FAST_RETRY)
    task = wait_terminal(http, invoke(http, "flaky"))
    assert task["status"] == "Succeeded"
    assert task["result"] == "third time lucky"
    assert task["attempt"] == 3
    statuses = [e["status"] for e in task["events"]]
    assert statuses == [
        "Enqueued",
        "Running",
        "Retrying",
        "Enqueued",
        "Running",
        "Retrying",
        "Enqueued",
        "Running",
        "Succeeded",
    ]
    assert [a["outcome"] for a in task["attempts"]][:2] == ["Retrying", "Retrying"]
    assert task["attempts"][0]["error"]["message"] == "attempt 1 fails"


def test_exhausted_retries_fail_with_type_message_and_traceback(http: httpx.Client) -> None:
    deploy(
        http,
        "broken",
        "def handler(e, c):\n    raise KeyError('nope')\n",
        **{"async": {"max_retries": 1, "retry_backoff": {"base_s": 0.05}}},
    )
    task = wait_terminal(http, invoke(http, "broken"))
    assert task["status"] == "Failed"
    assert task["attempt"] == 2
    assert task["error"]["type"] == "KeyError"
    assert "nope" in task["error"]["message"]
    assert "raise KeyError" in task["error"]["traceback"]


def test_instance_exit_fails_the_attempt_and_the_instance_is_replaced(http: httpx.Client) -> None:
    code = (
        "import os\ndef handler(e, c):\n    if e == b'die':\n        os._exit(3)\n"
        "    return os.getpid()\n"
    )
    deploy(http, "exiter", code, max_instances=1, **{"async": {"max_retries": 0}})
    first = wait_terminal(http, invoke(http, "exiter", b"live"))["result"]
    died = wait_terminal(http, invoke(http, "exiter", b"die"))
    assert died["status"] == "Failed"
    assert died["error"]["type"] == "InstanceExited"
    assert died["error"]["exit_code"] == 3
    second = wait_terminal(http, invoke(http, "exiter", b"live"))
    assert second["status"] == "Succeeded"
    assert second["result"] != first


def test_timeout_kills_the_instance_and_fails_with_timeout_error(http: httpx.Client) -> None:
    deploy(
        http,
        "slow",
        "import time\ndef handler(e, c):\n    time.sleep(60)\n",
        timeout_s=1,
        **{"async": {"max_retries": 0}},
    )
    task = wait_terminal(http, invoke(http, "slow"))
    assert task["status"] == "Failed"
    assert task["error"]["type"] == "TimeoutError"
    assert 900 <= task["duration_ms"] < 10_000


def test_handler_that_cannot_import_fails_fast_without_retries(http: httpx.Client) -> None:
    deploy(http, "noimport", "import not_a_module_anywhere\ndef handler(e, c):\n    return 1\n")
    tasks = [invoke(http, "noimport") for _ in range(3)]
    for task_id in tasks:
        task = wait_terminal(http, task_id, timeout=15)
        assert task["status"] == "Failed"
        assert task["error"]["type"] == "HandlerImportError"
        assert "not_a_module_anywhere" in task["error"]["message"]
        assert task["attempt"] == 1


def test_async_def_handler(http: httpx.Client) -> None:
    code = (
        "import asyncio\nasync def handler(e, c):\n    await asyncio.sleep(0.01)\n"
        "    return e.decode().upper()\n"
    )
    deploy(http, "asyncer", code)
    task = wait_terminal(http, invoke(http, "asyncer", b"quiet"))
    assert task["result"] == "QUIET"


def test_command_runtime_reads_stdin_and_answers_stdout(http: httpx.Client) -> None:
    deploy(
        http,
        "upper",
        None,
        runtime="command",
        command=[
            "python3",
            "-c",
            "import sys; d=sys.stdin.read(); "
            "print('log line', file=sys.stderr); print(d.upper(), end='')",
        ],
    )
    ok = wait_terminal(http, invoke(http, "upper", b"ffmpeg-ish"))
    assert ok["status"] == "Succeeded", ok
    assert ok["result"] == "FFMPEG-ISH"
    logs = http.get(f"/v1/tasks/{ok['id']}/logs").json()["items"]
    assert any(item["line"] == "log line" for item in logs)


def test_command_nonzero_exit_fails_with_code_and_stderr(http: httpx.Client) -> None:
    deploy(
        http,
        "bad-cmd",
        None,
        runtime="command",
        command=["python3", "-c", "import sys; print('it broke', file=sys.stderr); sys.exit(4)"],
        **{"async": {"max_retries": 0}},
    )
    task = wait_terminal(http, invoke(http, "bad-cmd"))
    assert task["status"] == "Failed"
    assert "4" in task["error"]["message"]
    assert "it broke" in task["error"]["message"]


def test_batch_submits_many_in_order_and_all_run(http: httpx.Client) -> None:
    deploy(http, "double", "import json\ndef handler(e, c):\n    return json.loads(e) * 2\n")
    items = [1, {"payload": 2}, {"payload": 3, "task_id": "batch-three"}, 4]
    resp = http.post("/v1/functions/double/invocations:batch", json=items)
    assert resp.status_code == 202, resp.text
    out = resp.json()["items"]
    assert len(out) == 4 and out[2]["task_id"] == "batch-three"
    assert all(item["created"] for item in out)
    results = [wait_terminal(http, item["task_id"])["result"] for item in out]
    assert results == [2, 4, 6, 8]


def test_sync_invocation_answers_the_result(http: httpx.Client) -> None:
    deploy(http, "sync-echo", "def handler(e, c):\n    return {'len': len(e)}\n")
    resp = http.post(
        "/v1/functions/sync-echo/invocations", content=b"abc", headers={"X-Invocation-Type": "Sync"}
    )
    assert resp.status_code == 200
    assert resp.json() == {"len": 3}
    task = http.get(f"/v1/tasks/{resp.headers['X-Task-Id']}").json()
    assert task["status"] == "Succeeded"


def test_list_tasks_filters_and_pages_newest_first(http: httpx.Client) -> None:
    deploy(http, "a", "def handler(e, c):\n    return 1\n")
    deploy(
        http,
        "b",
        "def handler(e, c):\n    raise RuntimeError('x')\n",
        **{"async": {"max_retries": 0}},
    )
    a_ids = [invoke(http, "a") for _ in range(5)]
    b_ids = [invoke(http, "b") for _ in range(2)]
    for task_id in a_ids + b_ids:
        wait_terminal(http, task_id)
    seen: list[str] = []
    cursor = None
    while True:
        params = {"function": "a", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = http.get("/v1/tasks", params=params).json()
        seen += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(a_ids))
    failed = http.get("/v1/tasks", params={"status": "Failed"}).json()["items"]
    assert {t["id"] for t in failed} == set(b_ids)


def test_delayed_task_waits_and_priority_orders_the_queue(http: httpx.Client) -> None:
    deploy(http, "clock", "import time\ndef handler(e, c):\n    return time.time()\n")
    delayed = invoke(http, "clock", b"{}", **{"X-Delay-Seconds": "0.5"})
    task = wait_terminal(http, delayed)
    created = task["events"][0]["at"]
    assert task["run_at"] > created
    assert task["started_at"] >= task["run_at"]
