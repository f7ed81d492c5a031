"""Concurrency keys on a real node: a key value's cap (checked from the attempts' recorded
instance start and finish times), round robin across values, cancel_newest and cancel_oldest
outcomes and events, the busiest keys in the function's stats, the task's key values, and bad
config answering 422 naming the field."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from tests.e2e.harness import deploy, wait_terminal
from tests.e2e.test_e2e_flow import most_at_once, spans

pytestmark = pytest.mark.timeout(120)

SLEEPY = (
    "import json, time\n\n"
    "def handler(event, context):\n"
    "    time.sleep(json.loads(event)['s'])\n"
    "    return json.loads(event)['c']\n"
)


def submit(
    http: httpx.Client,
    name: str,
    customer: str,
    sleep_s: float,
    headers: dict[str, str] | None = None,
) -> str:
    body = json.dumps({"c": customer, "s": sleep_s})
    resp = http.post(f"/v1/functions/{name}/invocations", content=body, headers=headers or {})
    assert resp.status_code == 202, resp.text
    return str(resp.json()["task_id"])


def wait_status(http: httpx.Client, task_id: str, status: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while http.get(f"/v1/tasks/{task_id}").json()["status"] != status:
        assert time.monotonic() < deadline, f"task {task_id} never {status}"
        time.sleep(0.02)


def first_start(task: dict[str, Any]) -> float:
    (start, _) = spans([task])[0]
    return start


def test_a_key_value_never_runs_more_than_its_limit_and_values_take_turns(
    http: httpx.Client,
) -> None:
    deploy(http, "keyed", SLEEPY, max_instances=4, concurrency=[{"key": "/c", "limit": 1}])
    hot = [submit(http, "keyed", "hot", 0.2) for _ in range(6)]
    cold = [submit(http, "keyed", f"cold-{i}", 0.2) for i in range(2)]
    hot_tasks = [wait_terminal(http, t, 60) for t in hot]
    cold_tasks = [wait_terminal(http, t, 60) for t in cold]
    assert {t["status"] for t in hot_tasks + cold_tasks} == {"Succeeded"}

    assert most_at_once(spans(hot_tasks)) == 1
    # Round robin: the cold values did not wait behind the hot value's queue.
    third_hot = sorted(first_start(t) for t in hot_tasks)[2]
    assert all(first_start(t) < third_hot for t in cold_tasks)


def test_cancel_newest_stops_the_task_over_the_limit(http: httpx.Client) -> None:
    limit = {"key": "/c", "limit": 1, "strategy": "cancel_newest"}
    deploy(http, "newest", SLEEPY, max_instances=3, concurrency=[limit])
    running = submit(http, "newest", "acme", 1.0)
    wait_status(http, running, "Running")
    extra = submit(http, "newest", "acme", 0.0)
    other = submit(http, "newest", "other", 0.0)

    dropped = wait_terminal(http, extra)
    assert dropped["status"] == "Stopped"
    detail = dropped["events"][-1]["detail"]
    assert detail["reason"] == "concurrency_key"
    assert (detail["key"], detail["value"], detail["limit"]) == ("/c", "acme", 1)
    assert detail["strategy"] == "cancel_newest"
    assert dropped["attempts"] == []
    assert wait_terminal(http, running)["status"] == "Succeeded"
    assert wait_terminal(http, other)["status"] == "Succeeded"


def test_cancel_oldest_stops_the_running_task_and_runs_the_new_one(http: httpx.Client) -> None:
    limit = {"key": "/c", "limit": 1, "strategy": "cancel_oldest"}
    deploy(http, "oldest", SLEEPY, max_instances=3, stop_grace_s=1, concurrency=[limit])
    old = submit(http, "oldest", "acme", 60.0)
    wait_status(http, old, "Running")
    new = submit(http, "oldest", "acme", 0.0)

    replaced = wait_terminal(http, old, 30)
    assert replaced["status"] == "Stopped"
    stopping = [e for e in replaced["events"] if e["status"] == "Stopping"]
    assert len(stopping) == 1
    detail = stopping[0]["detail"]
    assert detail["reason"] == "concurrency_key" and detail["strategy"] == "cancel_oldest"
    assert (detail["value"], detail["replaced_by"]) == ("acme", new)

    ran = wait_terminal(http, new, 30)
    assert ran["status"] == "Succeeded"
    assert first_start(ran) >= spans([replaced])[0][1]  # only once the old one had ended


def test_stats_show_the_busiest_keys_and_tasks_show_their_keys(http: httpx.Client) -> None:
    limits = [{"key": "/c", "limit": 1}, {"key": "header:X-Team", "limit": 5}]
    deploy(http, "busy", SLEEPY, max_instances=3, concurrency=limits)
    team = {"X-Team": "red"}
    first = submit(http, "busy", "acme", 30.0, team)
    waiting = [submit(http, "busy", "acme", 0.0, team) for _ in range(2)]
    other = submit(http, "busy", "beta", 30.0, team)
    wait_status(http, first, "Running")
    wait_status(http, other, "Running")

    stats = http.get("/v1/functions/busy/stats").json()
    by_key, by_team = stats["keys"]
    assert (by_key["key"], by_key["limit"], by_key["strategy"]) == ("/c", 1, "queue")
    assert by_key["busiest"] == [
        {"value": "acme", "running": 1, "waiting": 2},
        {"value": "beta", "running": 1, "waiting": 0},
    ]
    assert by_team["busiest"] == [{"value": "red", "running": 2, "waiting": 2}]

    task = http.get(f"/v1/tasks/{waiting[0]}").json()
    assert task["keys"] == {"concurrency": ["acme", "red"], "debounce": None, "throttle": None}
    for task_id in (first, *waiting, other):
        http.post(f"/v1/tasks/{task_id}:stop")


def test_a_function_without_keys_shows_none(http: httpx.Client) -> None:
    deploy(http, "plain", SLEEPY, max_instances=1)
    task = wait_terminal(http, submit(http, "plain", "acme", 0.0))
    assert task["keys"] is None
    assert http.get("/v1/functions/plain/stats").json()["keys"] == []


@pytest.mark.parametrize(
    ("limits", "field"),
    [
        ([{"key": "customer", "limit": 1}], "concurrency.0.key"),
        ([{"key": "/c", "limit": 0}], "concurrency.0.limit"),
        ([{"key": "/c", "limit": 1, "strategy": "sometimes"}], "concurrency.0.strategy"),
        ([{"key": "/c", "limit": 1}] * 4, "concurrency"),
    ],
)
def test_bad_concurrency_config_answers_422_naming_the_field(
    http: httpx.Client, limits: list[dict[str, Any]], field: str
) -> None:
    resp = http.put(
        "/v1/functions/bad", json={"runtime": "python", "handler": "main:h", "concurrency": limits}
    )
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["field"] == field
