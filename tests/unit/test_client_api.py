"""`Client` against a real HTTP server speaking the v1 contract (see test_client_fakeapi)."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from asyncfn.client import (
    ApiError,
    Client,
    ConflictError,
    NotFoundError,
    TaskFailed,
    TaskTimeout,
)
from tests.unit.fakeapi import FakeApi

NOW_AT = "2025-01-02T03:04:05.250Z"


@pytest.fixture
def client(api: FakeApi) -> Iterator[Client]:
    api.add_function("echo")
    with Client(api.url, api_key="k-123") as client:
        yield client


def last_invocation(api: FakeApi) -> tuple[dict[str, str], bytes]:
    seen = api.requests("POST", "/v1/functions/echo/invocations")[-1]
    return seen.headers, seen.body


def test_bytes_payload_is_sent_as_is(api: FakeApi, client: Client) -> None:
    client.invoke_async("echo", b"\x00\xffraw")
    headers, body = last_invocation(api)
    assert body == b"\x00\xffraw"
    assert headers["x-invocation-type"] == "Async"
    assert headers["content-type"] == "application/octet-stream"


def test_str_payload_is_sent_as_utf8(api: FakeApi, client: Client) -> None:
    client.invoke_async("echo", "héllo")
    assert last_invocation(api)[1] == "héllo".encode()


def test_other_payloads_are_sent_as_json(api: FakeApi, client: Client) -> None:
    client.invoke_async("echo", {"src": "a.jpg", "sizes": [1, 2]})
    headers, body = last_invocation(api)
    assert json.loads(body) == {"src": "a.jpg", "sizes": [1, 2]}
    assert headers["content-type"] == "application/json"


def test_submission_options_become_headers(api: FakeApi, client: Client) -> None:
    run_at = datetime(2030, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    client.invoke_async("echo", b"", task_id="job-1", run_at=run_at, priority=3)
    client.invoke_async("echo", b"", delay_s=1.5)
    client.invoke_async("echo", b"", delay_s=30)
    first, second, third = api.requests("POST", "/v1/functions/echo/invocations")
    assert first.headers["x-task-id"] == "job-1"
    assert first.headers["x-run-at"] == "2030-01-02T03:04:05Z"
    assert first.headers["x-priority"] == "3"
    assert "x-delay-seconds" not in first.headers
    assert second.headers["x-delay-seconds"] == "1.5"
    assert third.headers["x-delay-seconds"] == "30"
    assert "x-task-id" not in second.headers


def test_run_at_string_is_sent_as_given(api: FakeApi, client: Client) -> None:
    client.invoke_async("echo", b"", run_at="2030-01-02T03:04:05+01:00")
    assert last_invocation(api)[0]["x-run-at"] == "2030-01-02T03:04:05+01:00"


def test_naive_run_at_is_refused_before_sending(api: FakeApi, client: Client) -> None:
    with pytest.raises(ValueError, match="timezone"):
        client.invoke_async("echo", b"", run_at=datetime(2030, 1, 1))
    assert api.requests("POST", "/v1/functions") == []


def test_api_key_is_sent_as_bearer_token(api: FakeApi, client: Client) -> None:
    client.health()
    assert api.seen[-1].headers["authorization"] == "Bearer k-123"


def test_accepted_invocation_gives_a_handle(client: Client) -> None:
    handle = client.invoke_async("echo", b"x", task_id="a-1")
    assert (handle.task_id, handle.status, handle.created) == ("a-1", "Enqueued", True)
    assert handle.client is client


def test_reused_task_id_raises_conflict_naming_the_existing_task(
    api: FakeApi, client: Client
) -> None:
    api.add_task("dup-1", status="Running")
    with pytest.raises(ConflictError) as caught:
        client.invoke_async("echo", b"x", task_id="dup-1")
    error = caught.value
    assert (error.status_code, error.code) == (409, "duplicate_task")
    assert (error.existing_task_id, error.existing_status) == ("dup-1", "Running")
    assert "already used" in error.message


def test_unknown_function_raises_not_found(client: Client) -> None:
    with pytest.raises(NotFoundError) as caught:
        client.invoke_async("nope", b"")
    assert (caught.value.status_code, caught.value.code) == (404, "function_not_found")
    assert isinstance(caught.value, ApiError)
    assert "nope" in str(caught.value)


def test_unknown_task_raises_not_found(client: Client) -> None:
    with pytest.raises(NotFoundError, match="task_not_found"):
        client.get_task("missing")


def test_error_without_json_body_still_raises_api_error(api: FakeApi, client: Client) -> None:
    api.outage = True
    with pytest.raises(ApiError) as caught:
        client.health()
    assert (caught.value.status_code, caught.value.code) == (503, "http_503")
    assert caught.value.message == "upstream down"


def test_wait_polls_until_the_task_is_terminal(api: FakeApi, client: Client) -> None:
    api.add_task("w-1")
    api.script["w-1"] = [
        {"status": "Running"},
        {"status": "Running"},
        {"status": "Succeeded", "result": {"width": 640}},
    ]
    task = client.wait("w-1", timeout=5)
    assert task["status"] == "Succeeded"
    assert len(api.requests("GET", "/v1/tasks/w-1")) == 3


def test_wait_raises_task_timeout_while_the_task_runs(api: FakeApi, client: Client) -> None:
    api.add_task("w-2", status="Running")
    with pytest.raises(TaskTimeout) as caught:
        client.wait("w-2", timeout=0.05)
    assert (caught.value.task_id, caught.value.status) == ("w-2", "Running")


def test_result_answers_the_result_of_a_succeeded_task(api: FakeApi, client: Client) -> None:
    handle = client.invoke_async("echo", b"x")
    api.script[handle.task_id] = [{"status": "Succeeded", "result": [1, 2]}]
    assert handle.result(timeout=5) == [1, 2]
    assert handle.status == "Succeeded"


@pytest.mark.parametrize("status", ["Failed", "Stopped", "Expired", "Invalid"])
def test_result_raises_task_failed_for_other_terminal_statuses(
    api: FakeApi, client: Client, status: str
) -> None:
    handle = client.invoke_async("echo", b"x")
    failure = {"type": "ValueError", "message": "bad input", "traceback": "Traceback..."}
    api.script[handle.task_id] = [{"status": "Running"}, {"status": status, "error": failure}]
    with pytest.raises(TaskFailed) as caught:
        handle.result(timeout=5)
    assert (caught.value.task_id, caught.value.status) == (handle.task_id, status)
    assert caught.value.error == failure
    assert "ValueError: bad input" in str(caught.value)


def test_refresh_answers_the_task_now(api: FakeApi, client: Client) -> None:
    handle = client.invoke_async("echo", b"x")
    api.script[handle.task_id] = [{"status": "Running"}]
    assert handle.refresh()["status"] == "Running"
    assert handle.status == "Running"


def test_sync_invoke_answers_the_result(api: FakeApi, client: Client) -> None:
    assert client.invoke("echo", "hi") == {"echo": "hi"}
    assert last_invocation(api)[0]["x-invocation-type"] == "Sync"


def test_sync_invoke_of_a_failing_task_raises_task_failed(client: Client) -> None:
    with pytest.raises(TaskFailed) as caught:
        client.invoke("echo", b"fail")
    error = caught.value
    assert error.status_code == 502
    assert error.task_id is not None and error.status == "Failed"
    assert error.error["type"] == "ValueError"
    assert error.error["traceback"] == "Traceback: boom"


def test_sync_invoke_past_the_servers_wait_raises_task_timeout(client: Client) -> None:
    with pytest.raises(TaskTimeout) as caught:
        client.invoke("echo", b"slow")
    assert caught.value.status_code == 504
    assert caught.value.task_id is not None


def test_follow_logs_yields_every_line_until_the_task_ends(api: FakeApi, client: Client) -> None:
    api.add_task("l-1", status="Running")
    lines = [{"seq": n, "at": NOW_AT, "stream": "stdout", "line": f"step {n}"} for n in (1, 2, 3)]
    api.pending_logs["l-1"] = list(lines)
    assert list(client.follow_logs("l-1", poll_s=0.01)) == lines
    afters = [seen.query["after"] for seen in api.requests("GET", "/v1/tasks/l-1/logs")]
    assert afters[:4] == ["0", "1", "2", "3"]


def test_logs_answers_lines_after_a_seq(api: FakeApi, client: Client) -> None:
    api.add_task("l-2", status="Succeeded")
    api.logs["l-2"] = [{"seq": n, "at": NOW_AT, "stream": "stderr", "line": "x"} for n in (1, 2)]
    assert [line["seq"] for line in client.logs("l-2", after=1)] == [2]


def test_iter_tasks_follows_cursors_to_the_last_page(api: FakeApi, client: Client) -> None:
    for n in range(5):
        api.add_task(f"i-{n}", function="echo")
    api.add_task("other", function="resize")
    ids = [task["id"] for task in client.iter_tasks(function="echo", page_size=2)]
    assert ids == ["i-4", "i-3", "i-2", "i-1", "i-0"]
    pages = api.requests("GET", "/v1/tasks")
    assert [p.query.get("cursor") for p in pages] == [None, "2", "4"]
    assert all(p.query["function"] == "echo" and p.query["limit"] == "2" for p in pages)


def test_list_tasks_sends_filters(api: FakeApi, client: Client) -> None:
    since = datetime(2025, 1, 1, tzinfo=UTC)
    page = client.list_tasks(status="Failed", since=since, until="2025-02-01T00:00:00Z", limit=7)
    assert page == {"items": [], "next_cursor": None}
    query = api.requests("GET", "/v1/tasks")[-1].query
    assert query == {
        "status": "Failed",
        "since": "2025-01-01T00:00:00Z",
        "until": "2025-02-01T00:00:00Z",
        "limit": "7",
    }


def test_batch_sends_full_items_and_answers_handles_in_order(api: FakeApi, client: Client) -> None:
    api.add_task("b-old")
    handles = client.invoke_batch(
        "echo",
        [
            "text",
            {"a": 1},
            b"bytes",
            {"payload": "x", "task_id": "b-1", "run_at": datetime(2030, 1, 1, tzinfo=UTC)},
            {"payload": "y", "task_id": "b-old", "priority": 2, "delay_s": None},
        ],
    )
    sent = api.requests("POST", "/v1/functions/echo/invocations:batch")[0].json()
    assert sent == [
        {"payload": "text"},
        {"payload": {"a": 1}},
        {"payload": "bytes"},
        {"payload": "x", "task_id": "b-1", "run_at": "2030-01-01T00:00:00Z"},
        {"payload": "y", "task_id": "b-old", "priority": 2},
    ]
    assert [h.created for h in handles] == [True, True, True, True, False]
    assert handles[3].task_id == "b-1" and handles[4].task_id == "b-old"


def test_batch_refuses_unknown_item_keys(client: Client) -> None:
    with pytest.raises(ValueError, match="delay"):
        client.invoke_batch("echo", [{"payload": 1, "delay": 3}])


def test_deploy_puts_the_config_then_the_code(api: FakeApi, client: Client) -> None:
    function = client.deploy(
        "resize", handler="main:handler", code=b"PK-zip", timeout_s=30, async_={"max_retries": 1}
    )
    put_config, put_code = api.requests("PUT", "/v1/functions/resize")
    assert put_config.path == "/v1/functions/resize"
    assert put_config.json() == {
        "runtime": "python",
        "handler": "main:handler",
        "timeout_s": 30,
        "async": {"max_retries": 1},
    }
    assert put_code.path == "/v1/functions/resize/code"
    assert put_code.headers["content-type"] == "application/zip"
    assert put_code.body == b"PK-zip"
    assert function["code_sha256"] == api.functions["resize"]["code_sha256"]


def test_deploy_of_a_command_splits_a_command_string(api: FakeApi, client: Client) -> None:
    function = client.deploy("tc", command="ffmpeg -i pipe:0 -f 'mp4 x'")
    assert api.requests("PUT", "/v1/functions/tc")[0].json() == {
        "runtime": "command",
        "command": ["ffmpeg", "-i", "pipe:0", "-f", "mp4 x"],
    }
    assert function["code_sha256"] is None
    assert len(api.requests("PUT", "/v1/functions/tc")) == 1


def test_deploy_zips_a_directory(api: FakeApi, client: Client, tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text("def handler(event, context):\n    return event\n")
    client.deploy("fromdir", handler="main:handler", code=tmp_path)
    with zipfile.ZipFile(io.BytesIO(api.code["fromdir"])) as bundle:
        assert "main.py" in bundle.namelist()


def test_functions_can_be_read_listed_and_deleted(api: FakeApi, client: Client) -> None:
    assert client.get_function("echo")["handler"] == "main:handler"
    assert [f["name"] for f in client.list_functions()] == ["echo"]
    client.delete_function("echo")
    with pytest.raises(NotFoundError):
        client.get_function("echo")


def test_health(client: Client) -> None:
    assert client.health()["status"] == "ok"
