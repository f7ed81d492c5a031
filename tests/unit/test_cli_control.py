"""`asyncfn stop|suspend|resume|rerun|pause|unpause` through typer's CliRunner, against the real
HTTP fake of the API."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner, Result

from asyncfn import cli
from tests.unit.fakeapi import FakeApi

runner = CliRunner()


def run(api: FakeApi, *args: str) -> Result:
    return runner.invoke(cli.app, ["--url", api.url, *args])


@pytest.fixture(autouse=True)
def echo(api: FakeApi) -> None:
    api.add_function("echo")


def test_stop_prints_the_id_and_status(api: FakeApi) -> None:
    api.add_task("s-1", status="Running")
    result = run(api, "stop", "s-1")
    assert result.exit_code == 0, result.output
    assert result.stdout == "s-1 Stopped\n"
    assert result.stderr == ""
    assert [s.path for s in api.requests("POST", "/v1/tasks")] == ["/v1/tasks/s-1:stop"]


def test_stop_of_a_task_still_stopping_says_so(api: FakeApi) -> None:
    api.add_task("s-2", status="Running")
    api.slow_stops.add("s-2")
    result = run(api, "stop", "s-2")
    assert result.exit_code == 0, result.output
    assert result.stdout == "s-2 Stopping\n"
    assert "still stopping" in result.stderr


def test_suspend_and_resume_print_the_id_and_status(api: FakeApi) -> None:
    api.add_task("r-1")
    suspended = run(api, "suspend", "r-1")
    assert (suspended.exit_code, suspended.stdout) == (0, "r-1 Suspended\n")
    resumed = run(api, "resume", "r-1")
    assert (resumed.exit_code, resumed.stdout) == (0, "r-1 Enqueued\n")


@pytest.mark.parametrize("verb", ["stop", "suspend", "resume", "rerun"])
def test_a_refused_transition_exits_1_naming_the_status(api: FakeApi, verb: str) -> None:
    api.add_task("x-1", status="Succeeded" if verb != "rerun" else "Running")
    result = run(api, verb, "x-1")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "transition_refused" in result.stderr
    assert api.tasks["x-1"]["status"] in result.stderr
    assert "Traceback" not in result.output


def test_an_unknown_task_exits_1(api: FakeApi) -> None:
    result = run(api, "stop", "missing")
    assert result.exit_code == 1
    assert "task_not_found" in result.stderr


def test_rerun_prints_the_new_task_id(api: FakeApi) -> None:
    api.add_task("old", status="Failed", payload="p")
    result = run(api, "rerun", "old")
    assert result.exit_code == 0, result.output
    new_id = result.stdout.strip()
    assert new_id != "old" and api.tasks[new_id]["rerun_of"] == "old"
    assert f"rerun of old: {new_id} Enqueued" in result.stderr
    assert "x-task-id" not in api.requests("POST", "/v1/tasks/old:rerun")[0].headers


def test_rerun_with_a_task_id(api: FakeApi) -> None:
    api.add_task("old", status="Stopped")
    result = run(api, "rerun", "old", "--task-id", "again")
    assert result.exit_code == 0, result.output
    assert result.stdout == "again\n"
    assert api.requests("POST", "/v1/tasks/old:rerun")[0].headers["x-task-id"] == "again"
    taken = run(api, "rerun", "old", "--task-id", "again")
    assert taken.exit_code == 1
    assert "duplicate_task" in taken.stderr


def test_pause_and_unpause_a_function(api: FakeApi) -> None:
    paused = run(api, "pause", "echo")
    assert (paused.exit_code, paused.stdout) == (0, "echo paused\n")
    assert api.functions["echo"]["paused"] is True
    listing = run(api, "functions")
    assert listing.stdout.splitlines()[0].split()[-2:] == ["QUEUE", "UPDATED"]
    assert "paused" in listing.stdout.splitlines()[2]
    unpaused = run(api, "unpause", "echo")
    assert (unpaused.exit_code, unpaused.stdout) == (0, "echo unpaused\n")
    assert [s.path for s in api.requests("POST", "/v1/functions")] == [
        "/v1/functions/echo:suspend",
        "/v1/functions/echo:resume",
    ]
    unknown = run(api, "pause", "nope")
    assert unknown.exit_code == 1
    assert "function_not_found" in unknown.stderr


def test_invoke_sends_run_at_with_the_other_submission_options(api: FakeApi) -> None:
    result = run(
        api,
        "invoke",
        "echo",
        "x",
        "--async",
        "--run-at",
        "2030-01-02T03:04:05Z",
        "--task-id",
        "at-1",
        "--priority",
        "-1",
    )
    assert result.exit_code == 0, result.output
    headers = api.requests("POST", "/v1/functions/echo/invocations")[0].headers
    assert headers["x-run-at"] == "2030-01-02T03:04:05Z"
    assert (headers["x-task-id"], headers["x-priority"]) == ("at-1", "-1")


def test_help_lists_the_control_verbs() -> None:
    result = runner.invoke(cli.app, ["--help"])
    assert result.exit_code == 0
    for verb in ("stop", "suspend", "resume", "rerun", "pause", "unpause"):
        assert verb in result.stdout
