"""Debounce and throttle against a real server: 100 rapid submissions of one debounce key run
once, with the latest payload, the 99 others Stopped and naming what superseded them; a throttle
accepts every submission and starts them in order at its rate; bad config answers 422."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.harness import Server, deploy, free_port, wait_terminal
from tests.e2e.pgdb import fresh_database

pytestmark = pytest.mark.timeout(120)

ECHO = """
import json

def handler(event, context):
    return json.loads(event)
"""


@pytest.fixture(params=["sqlite", "postgres"])
def node(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[httpx.Client]:
    """A client of a real server on SQLite, or on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        server = Server(tmp_path / "data", free_port()).start()
        try:
            with httpx.Client(base_url=server.url, timeout=30) as http:
                yield http
        finally:
            server.stop()
        return
    with fresh_database("asyncfn_e2e_shaping") as url:
        server = Server(tmp_path / "data", free_port(), {"ASYNCFN_STORE": url}).start()
        try:
            with httpx.Client(base_url=server.url, timeout=30) as http:
                yield http
        finally:
            server.stop()


def tasks_of(http: httpx.Client, name: str, status: str | None = None) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"function": name, "limit": 200}
    if status is not None:
        params["status"] = status
    resp = http.get("/v1/tasks", params=params)
    assert resp.status_code == 200, resp.text
    items: list[dict[str, Any]] = resp.json()["items"]
    return items


def wait_all_ended(http: httpx.Client, name: str, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        items = tasks_of(http, name)
        if len(items) == count and all(t["finished_at"] is not None for t in items):
            return
        assert time.monotonic() < deadline, [t["status"] for t in items]
        time.sleep(0.1)


def test_debounce_collapses_100_rapid_submissions_into_1_run(node: httpx.Client) -> None:
    http = node
    deploy(http, "indexer", ECHO, debounce={"key": "/doc", "window_s": 3, "max_wait_s": 60})
    answers = []
    for i in range(100):
        resp = http.post(
            "/v1/functions/indexer/invocations", content=json.dumps({"doc": "d1", "n": i})
        )
        assert resp.status_code == 202, resp.text
        assert resp.json()["run_at"] is not None
        answers.append(resp.json()["task_id"])

    survivor = wait_terminal(http, answers[-1])
    wait_all_ended(http, "indexer", 100)

    assert survivor["status"] == "Succeeded"
    assert survivor["result"] == {"doc": "d1", "n": 99}  # the latest payload
    assert survivor["events"][0]["detail"]["debounce"]["superseded"] == answers[-2]
    assert len(tasks_of(http, "indexer", "Succeeded")) == 1
    assert len(tasks_of(http, "indexer", "Stopped")) == 99
    for earlier, later in itertools.pairwise(answers):
        task = http.get(f"/v1/tasks/{earlier}").json()
        assert task["status"] == "Stopped" and task["started_at"] is None
        assert task["events"][-1]["detail"]["reason"] == "debounced"
        assert task["events"][-1]["detail"]["superseded_by"] == later


def test_throttle_accepts_all_and_starts_them_in_order(node: httpx.Client) -> None:
    http = node
    deploy(
        http,
        "mailer",
        ECHO,
        throttle={"key": "tenant", "per_s": 20},
        max_instances=1,
    )
    resp = http.post("/v1/functions/mailer/invocations:batch", json=[{"n": i} for i in range(20)])
    assert resp.status_code == 202, resp.text
    answers = [item["task_id"] for item in resp.json()["items"]]
    for i in range(20, 40):
        one = http.post("/v1/functions/mailer/invocations", content=json.dumps({"n": i}))
        assert one.status_code == 202, one.text
        answers.append(one.json()["task_id"])

    tasks = [wait_terminal(http, task_id) for task_id in answers]

    assert all(t["status"] == "Succeeded" for t in tasks)
    run_ats = [t["run_at"] for t in tasks]
    assert run_ats == sorted(run_ats) and len(set(run_ats)) == 40  # a slot each, in order
    started = [t["started_at"] for t in tasks]
    assert started == sorted(started)  # one instance, claimed in run_at order
    assert all(t["started_at"] >= t["run_at"] for t in tasks)
    assert tasks[0]["events"][0]["detail"] is None
    for t in tasks[1:20]:  # one batch, one arrival time: each waits for its slot
        assert t["events"][0]["detail"]["throttled"]["key"] == "default"
    for t in tasks[20:]:  # later arrivals: delayed exactly when they came before their slot
        throttled = "throttled" in (t["events"][0]["detail"] or {})
        assert throttled == (t["run_at"] > t["created_at"])


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"debounce": {"key": "/doc", "window_s": 5, "max_wait_s": 1}}, "debounce.max_wait_s"),
        ({"debounce": {"key": "doc", "window_s": 1, "max_wait_s": 5}}, "debounce.key"),
        ({"throttle": {"key": "tenant", "per_s": 0}}, "throttle.per_s"),
        ({"throttle": {"key": "tenant", "per_s": 5, "burst": 0}}, "throttle.burst"),
    ],
)
def test_bad_config_answers_422_naming_the_field(
    server: Server, http: httpx.Client, config: dict[str, Any], field: str
) -> None:
    resp = http.put(
        "/v1/functions/bad", json={"runtime": "python", "handler": "main:handler", **config}
    )
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["field"] == field
