"""The `asyncfn` command through typer's CliRunner, against the real HTTP fake of the API."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from asyncfn import cli, node
from asyncfn.settings import Settings
from tests.unit.fakeapi import FakeApi

runner = CliRunner()


def run(api: FakeApi, *args: str, input: str | bytes | None = None) -> Result:
    return runner.invoke(cli.app, ["--url", api.url, *args], input=input)


@pytest.fixture(autouse=True)
def echo(api: FakeApi) -> None:
    api.add_function("echo")


def test_invoke_async_prints_the_task_id(api: FakeApi) -> None:
    result = run(
        api,
        "invoke",
        "echo",
        '{"n": 1}',
        "--async",
        "--task-id",
        "cli-1",
        "--delay",
        "2.5",
        "--priority",
        "4",
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == "cli-1\n"
    seen = api.requests("POST", "/v1/functions/echo/invocations")[-1]
    assert seen.body == b'{"n": 1}'
    assert seen.headers["x-invocation-type"] == "Async"
    assert (seen.headers["x-delay-seconds"], seen.headers["x-priority"]) == ("2.5", "4")


def test_invoke_reads_the_payload_from_stdin_or_a_file(api: FakeApi, tmp_path: Path) -> None:
    assert run(api, "invoke", "echo", "-", "--async", input=b"from stdin").exit_code == 0
    payload_file = tmp_path / "payload.bin"
    payload_file.write_bytes(b"\x00from file")
    assert run(api, "invoke", "echo", "--file", str(payload_file), "--async").exit_code == 0
    first, second = api.requests("POST", "/v1/functions/echo/invocations")
    assert (first.body, second.body) == (b"from stdin", b"\x00from file")


def test_invoke_async_wait_prints_the_final_task(api: FakeApi) -> None:
    api.script["t0001"] = [{"status": "Running"}, {"status": "Succeeded", "result": {"ok": 1}}]
    result = run(api, "invoke", "echo", "x", "--async", "--wait")
    assert result.exit_code == 0, result.output
    task = json.loads(result.stdout)
    assert (task["id"], task["status"], task["result"]) == ("t0001", "Succeeded", {"ok": 1})
    assert "t0001" in result.stderr


def test_invoke_async_wait_exits_1_when_the_task_failed(api: FakeApi) -> None:
    api.script["t0001"] = [{"status": "Failed", "error": {"type": "E", "message": "m"}}]
    result = run(api, "invoke", "echo", "x", "--async", "--wait")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["status"] == "Failed"


def test_invoke_runs_sync_by_default_and_prints_the_result(api: FakeApi) -> None:
    result = run(api, "invoke", "echo", "hello")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"echo": "hello"}
    seen = api.requests("POST", "/v1/functions/echo/invocations")[-1]
    assert seen.headers["x-invocation-type"] == "Sync"


def test_sync_invoke_of_a_failing_task_exits_1_with_its_error(api: FakeApi) -> None:
    result = run(api, "invoke", "echo", "fail")
    assert result.exit_code == 1
    assert "Failed: ValueError: boom" in result.stderr
    assert "Traceback (most recent call last)" not in result.output
    assert result.stdout == ""


def test_an_api_error_exits_1_with_its_message_and_no_traceback(api: FakeApi) -> None:
    result = run(api, "invoke", "nope", "x", "--async")
    assert result.exit_code == 1
    assert "error: function 'nope' not found (function_not_found)" in result.stderr
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)


def test_a_duplicate_task_id_exits_1_naming_the_conflict(api: FakeApi) -> None:
    api.add_task("dup", status="Running")
    result = run(api, "invoke", "echo", "x", "--async", "--task-id", "dup")
    assert result.exit_code == 1
    assert "already used" in result.stderr and "duplicate_task" in result.stderr


def test_an_unreachable_node_exits_1() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = runner.invoke(cli.app, ["--url", f"http://127.0.0.1:{port}", "tasks"])
    assert result.exit_code == 1
    assert "cannot talk to" in result.stderr


def test_usage_errors_exit_2(api: FakeApi) -> None:
    both = run(api, "deploy", "f", "--handler", "main:handler", "--command", "cat")
    assert both.exit_code == 2
    sync_with_delay = run(api, "invoke", "echo", "x", "--delay", "3")
    assert sync_with_delay.exit_code == 2
    assert run(api, "deploy", "f", "--env", "NOEQUALS").exit_code == 2
    assert api.requests("PUT", "/v1/functions") == []


def test_the_url_comes_from_asyncfn_url(api: FakeApi) -> None:
    result = runner.invoke(cli.app, ["invoke", "echo", "--async"], env={"ASYNCFN_URL": api.url})
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "t0001"


def test_tasks_prints_a_table(api: FakeApi) -> None:
    api.add_task("task-aaaaaaaaaaaaaaaaaaaaaaaaaaaa", status="Succeeded", duration_ms=1840)
    api.add_task("task-bbbbbbbbbbbbbbbbbbbbbbbbbbbb", status="Running", attempt=1)
    result = run(api, "tasks", "--function", "echo", "--limit", "5")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ID", "FUNCTION", "STATUS", "ATTEMPT", "CREATED", "DURATION"]
    assert lines[2].split()[:4] == ["task-bbbbbbbbbbbbbbbbbbbbbbbbbbbb", "echo", "Running", "1/4"]
    assert lines[3].split()[-2:] == ["1.84", "s"]
    assert "2025-01-02 03:04:05" in lines[3]
    query = api.requests("GET", "/v1/tasks")[-1].query
    assert query == {"function": "echo", "limit": "5"}


def test_task_prints_the_task_as_json_with_events(api: FakeApi) -> None:
    api.add_task("j-1", status="Succeeded", result={"width": 640})
    result = run(api, "task", "j-1")
    assert result.exit_code == 0, result.output
    task = json.loads(result.stdout)
    assert task["result"] == {"width": 640}
    assert task["events"][0]["status"] == "Enqueued"


def test_logs_prints_time_stream_and_line(api: FakeApi) -> None:
    api.add_task("l-1", status="Succeeded")
    at = "2025-01-02T03:04:05.250Z"
    api.logs["l-1"] = [
        {"seq": 1, "at": at, "stream": "stdout", "line": "[bold]not markup[/bold]"},
        {"seq": 2, "at": at, "stream": "stderr", "line": "oops"},
    ]
    result = run(api, "logs", "l-1")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "03:04:05.250 stdout [bold]not markup[/bold]",
        "03:04:05.250 stderr oops",
    ]


def test_logs_follow_prints_lines_until_the_task_ends(api: FakeApi) -> None:
    api.add_task("l-2", status="Running")
    at = "2025-01-02T03:04:05Z"
    api.pending_logs["l-2"] = [
        {"seq": n, "at": at, "stream": "stdout", "line": f"line {n}"} for n in (1, 2, 3)
    ]
    result = run(api, "logs", "l-2", "-f")
    assert result.exit_code == 0, result.output
    assert [line.split()[-1] for line in result.stdout.splitlines()] == ["1", "2", "3"]


def test_deploy_sends_config_file_and_flags_then_code(api: FakeApi, tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "main.py").write_text("def handler(event, context):\n    return event\n")
    config = tmp_path / "fn.json"
    from_function = {"name": "old", "created_at": "2025-01-01T00:00:00Z", "code_sha256": "ab"}
    fields = {"timeout_s": 10, "env": {"A": "file"}, "async": {"x": 1}, "handler": "old:h"}
    config.write_text(json.dumps({**from_function, **fields}))
    result = run(
        api,
        "deploy",
        "resize",
        "--handler",
        "main:handler",
        "--code",
        str(code),
        "--config",
        str(config),
        "--timeout",
        "30",
        "--memory",
        "256",
        "--concurrency",
        "2",
        "--retries",
        "1",
        "--env",
        "A=flag",
        "--env",
        "B=x=y",
    )
    assert result.exit_code == 0, result.output
    put_config, put_code = api.requests("PUT", "/v1/functions/resize")
    assert put_config.json() == {
        "runtime": "python",
        "handler": "main:handler",
        "timeout_s": 30,
        "memory_mb": 256,
        "instance_concurrency": 2,
        "async": {"x": 1, "max_retries": 1},
        "env": {"A": "flag", "B": "x=y"},
    }
    assert put_code.body.startswith(b"PK")
    sha256 = api.functions["resize"]["code_sha256"]
    assert json.loads(result.stdout)["code_sha256"] == sha256
    assert sha256 in result.stderr


def test_deploy_of_a_command(api: FakeApi) -> None:
    result = run(api, "deploy", "tc", "--command", "ffmpeg -i pipe:0 -f mp4 pipe:1")
    assert result.exit_code == 0, result.output
    assert api.requests("PUT", "/v1/functions/tc")[0].json() == {
        "runtime": "command",
        "command": ["ffmpeg", "-i", "pipe:0", "-f", "mp4", "pipe:1"],
    }


def test_functions_function_and_delete(api: FakeApi) -> None:
    listing = run(api, "functions")
    assert listing.exit_code == 0, listing.output
    assert "echo" in listing.stdout and "main:handler" in listing.stdout
    shown = run(api, "function", "echo")
    assert json.loads(shown.stdout)["name"] == "echo"
    assert run(api, "delete", "echo").exit_code == 0
    assert run(api, "function", "echo").exit_code == 1


def test_serve_builds_settings_from_the_flags_given(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    started: list[Settings] = []
    monkeypatch.setattr(node, "serve", started.append)
    monkeypatch.setenv("ASYNCFN_NODE_NAME", "from-env")
    data_dir = tmp_path / "data"
    args = [
        "serve",
        "--port",
        "9123",
        "--data-dir",
        str(data_dir),
        "--deploy",
        "a",
        "--deploy",
        "b",
    ]
    result = runner.invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    (settings,) = started
    assert (settings.port, settings.data_dir, settings.node_name) == (9123, data_dir, "from-env")
    assert settings.deploy == [Path("a"), Path("b")]
    assert settings.host == "127.0.0.1"


def test_serve_refuses_invalid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(node, "serve", lambda settings: None)
    result = runner.invoke(cli.app, ["serve", "--port", "70000"])
    assert result.exit_code == 2
    assert "invalid settings" in result.stderr


def test_python_dash_m_asyncfn_runs_the_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "asyncfn", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "invoke" in done.stdout and "serve" in done.stdout
