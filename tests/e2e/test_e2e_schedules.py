"""Schedules on a real server: ticks become tasks named after them, once each, across a kill -9
and a restart; a disabled schedule stays quiet; bad configs are refused naming the field."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from asyncfn import AsyncClient, Client, NotFoundError
from tests.e2e.harness import Server, deploy, free_port, wait_terminal

ECHO = """
def handler(event, context):
    return {"got": event.decode(), "task": context.task_id}
"""
TICK_ID = re.compile(r"^sched-(?P<name>[A-Za-z][\w-]*)-(?P<tick>\d+)$")

pytestmark = pytest.mark.timeout(60)


def ticks(http: httpx.Client, function: str, name: str) -> list[int]:
    """The ticks of `name`'s tasks, oldest first; every task must carry a tick's id."""
    items = http.get("/v1/tasks", params={"function": function, "limit": 1000}).json()["items"]
    found = []
    for item in items:
        match = TICK_ID.match(item["id"])
        assert match is not None, item["id"]
        assert match["name"] == name
        found.append(int(match["tick"]))
    assert len(found) == len(set(found)), "a tick made two tasks"
    return sorted(found)


def wait_for_ticks(http: httpx.Client, function: str, name: str, count: int) -> list[int]:
    deadline = time.monotonic() + 10
    while len(found := ticks(http, function, name)) < count:
        assert time.monotonic() < deadline, f"only {found} after 10 s"
        time.sleep(0.1)
    return found


def test_an_every_second_schedule_fires_once_per_tick(http: httpx.Client) -> None:
    deploy(http, "echo", ECHO)
    resp = http.put(
        "/v1/schedules/ticker", json={"function": "echo", "every_s": 1, "payload": {"n": 1}}
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["next_fire_at"] is not None and body["last_fire_at"] is None
    assert (body["every_s"], body["cron"], body["catch_up"]) == (1, None, "none")
    start = time.time()
    time.sleep(3.3)
    found = ticks(http, "echo", "ticker")
    elapsed = time.time() - start
    assert int(elapsed) - 1 <= len(found) <= int(elapsed) + 1, (found, elapsed)
    assert found == list(range(found[0], found[0] + len(found))), "a tick was skipped"
    assert found[0] >= int(start)
    task = wait_terminal(http, f"sched-ticker-{found[0]}")
    assert task["status"] == "Succeeded"
    assert task["result"] == {"got": '{"n":1}', "task": f"sched-ticker-{found[0]}"}

    again = http.put("/v1/schedules/ticker", json={"function": "echo", "cron": "0 3 * * *"})
    assert again.status_code == 200, again.text
    listed = http.get("/v1/schedules").json()["items"]
    assert [(s["name"], s["cron"]) for s in listed] == [("ticker", "0 3 * * *")]
    assert listed[0]["next_fire_at"].endswith("03:00:00.000Z")
    assert listed[0]["last_fire_at"] is not None
    assert http.delete("/v1/schedules/ticker").status_code == 204
    missing = http.get("/v1/schedules/ticker")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "schedule_not_found"


def test_a_disabled_schedule_never_fires(http: httpx.Client) -> None:
    deploy(http, "echo", ECHO)
    config = {"function": "echo", "every_s": 1, "enabled": False}
    resp = http.put("/v1/schedules/quiet", json=config)
    assert resp.status_code == 201, resp.text
    assert resp.json()["next_fire_at"] is None
    time.sleep(2.2)
    assert ticks(http, "echo", "quiet") == []
    assert http.get("/v1/schedules/quiet").json()["enabled"] is False


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"function": "nope", "every_s": 1}, 404, "function_not_found", None),
        ({"function": "echo"}, 422, "invalid_input", "cron"),
        ({"function": "echo", "every_s": 1, "cron": "* * * * *"}, 422, "invalid_input", "cron"),
        ({"function": "echo", "cron": "every day"}, 422, "invalid_input", "cron"),
        ({"function": "echo", "every_s": 0}, 422, "invalid_input", "every_s"),
        (
            {"function": "echo", "every_s": 5, "timezone": "Mars/X"},
            422,
            "invalid_input",
            "timezone",
        ),
        ({"function": "echo", "every_s": 5, "catch_up": "some"}, 422, "invalid_input", "catch_up"),
    ],
)
def test_bad_schedules_are_refused_naming_the_field(
    http: httpx.Client, body: dict[str, object], status: int, code: str, field: str | None
) -> None:
    deploy(http, "echo", ECHO)
    resp = http.put("/v1/schedules/bad", json=body)
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert error["code"] == code
    if field is not None:
        assert error["field"] == field
    assert http.get("/v1/schedules/bad").status_code == 404


def test_a_bad_schedule_name_is_refused(http: httpx.Client) -> None:
    deploy(http, "echo", ECHO)
    resp = http.put("/v1/schedules/9lives", json={"function": "echo", "every_s": 1})
    assert resp.status_code == 422
    assert resp.json()["error"]["field"] == "name"


@pytest.mark.parametrize("catch_up", ["all", "none"])
def test_ticks_missed_while_down_follow_catch_up(tmp_path: Path, catch_up: str) -> None:
    data = tmp_path / "data"
    first = Server(data, free_port()).start()
    try:
        with httpx.Client(base_url=first.url, timeout=30) as http:
            deploy(http, "echo", ECHO)
            config = {"function": "echo", "every_s": 1, "catch_up": catch_up}
            assert http.put("/v1/schedules/beat", json=config).status_code == 201
            wait_for_ticks(http, "echo", "beat", 1)
        first.kill()
        killed_at = time.time()
        time.sleep(3)
        restarted_at = time.time()
        second = Server(data, free_port()).start()
    finally:
        first.stop()
    try:
        with httpx.Client(base_url=second.url, timeout=30) as http:
            time.sleep(1.5)
            found = wait_for_ticks(http, "echo", "beat", 2)
            missed = list(range(int(killed_at) + 1, int(restarted_at)))
            assert len(missed) >= 2
            assert found[-1] >= int(restarted_at), "the schedule goes on after the restart"
            if catch_up == "all":
                assert found == list(range(found[0], found[-1] + 1)), "a missed tick was lost"
                assert set(missed) <= set(found)
            else:
                assert not set(missed) & set(found), "a missed tick fired under catch_up=none"
    finally:
        second.stop()


def cli(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "asyncfn", "--url", server.url, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_and_clients_manage_schedules(server: Server, http: httpx.Client) -> None:
    deploy(http, "echo", ECHO)
    made = cli(
        server, "schedule", "nightly", "--function", "echo", "--cron", "0 2 * * *",
        "--timezone", "Europe/Berlin", "--payload", '{"n": 1}', "--catch-up", "latest",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "nightly" in made.stdout
    listed = cli(server, "schedules")
    assert listed.returncode == 0, listed.stderr
    assert "0 2 * * * (Europe/Berlin)" in listed.stdout
    bad = cli(server, "schedule", "x", "--function", "echo")
    assert bad.returncode == 2

    with Client(server.url) as client:
        got = client.get_schedule("nightly")
        assert (got["catch_up"], got["payload"]) == ("latest", '{"n":1}')
        put = client.put_schedule("hourly", function="echo", every_s=3600, payload=b"raw")
        assert put["payload"] == "raw"
        assert [s["name"] for s in client.list_schedules()] == ["hourly", "nightly"]

    async def async_side() -> None:
        async with AsyncClient(server.url) as client:
            await client.put_schedule("hourly", function="echo", every_s=60, enabled=False)
            assert (await client.get_schedule("hourly"))["enabled"] is False
            await client.delete_schedule("hourly")
            assert [s["name"] for s in await client.list_schedules()] == ["nightly"]

    asyncio.run(async_side())
    gone = cli(server, "unschedule", "nightly")
    assert gone.returncode == 0, gone.stderr
    with Client(server.url) as client, pytest.raises(NotFoundError):
        client.get_schedule("nightly")
