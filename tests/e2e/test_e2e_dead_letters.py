"""Dead letters on a real server: a task that fails its last attempt is listed at
`GET /v1/dead-letters` (and by the CLI), reruns once from there, and reaches an http
`on_dead_letter` destination marked as a dead letter. And the handler's context carries a
CloudEvents task's attributes (a command gets them as `CE_*` variables)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from asyncfn.client import AsyncClient, Client, ConflictError
from tests.e2e.harness import Server, deploy, free_port, wait_terminal
from tests.e2e.test_e2e_destinations import FAST, Receiver, hook, invoke

GATED = (
    "import json, os\n"
    "def handler(event, context):\n"
    "    gate = json.loads(event)['gate']\n"
    "    if not os.path.exists(gate):\n"
    "        raise RuntimeError('the gate is closed')\n"
    "    return 'passed'\n"
)
BROKEN = "def handler(event, context):\n    raise KeyError('nope')\n"
ONE_RETRY = {"max_retries": 1, "retry_backoff": {"base_s": 0.05, "max_s": 0.05}}
ATTRIBUTES = "def handler(event, context):\n    return {'attributes': context.attributes}\n"
CE_ENV = (
    "import json, os; "
    "print(json.dumps({k: v for k, v in os.environ.items() if k.startswith('CE_')}), end='')"
)

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[tuple[Server, httpx.Client]]:
    srv = Server(tmp_path / "data", free_port(), env=FAST).start()
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as http:
            yield srv, http
    finally:
        srv.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver().start()
    try:
        yield started
    finally:
        started.stop()


def dead_letters(http: httpx.Client, **params: str) -> list[dict[str, Any]]:
    resp = http.get("/v1/dead-letters", params=params)
    assert resp.status_code == 200, resp.text
    items: list[dict[str, Any]] = resp.json()["items"]
    return items


def cli(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "asyncfn", "--url", server.url, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_task_failed_after_its_retries_is_listed_and_reruns_once(
    node: tuple[Server, httpx.Client], tmp_path: Path
) -> None:
    server, http = node
    deploy(http, "gated", GATED, **{"async": {**ONE_RETRY, "on_dead_letter": {"type": "list"}}})
    deploy(http, "plain", BROKEN, **{"async": {"max_retries": 0}})
    gate = tmp_path / "gate"
    task_id = invoke(http, "gated", json.dumps({"gate": str(gate)}).encode())
    failed = wait_terminal(http, task_id)
    plain = wait_terminal(http, invoke(http, "plain"))
    assert (failed["status"], failed["attempt"], plain["status"]) == ("Failed", 2, "Failed")

    (entry,) = dead_letters(http)
    assert entry == {
        "task_id": task_id,
        "function": "gated",
        "status": "Failed",
        "error": failed["error"],
        "attempts": 2,
        "at": failed["finished_at"],
        "rerun_as": None,
        "rerun_at": None,
    }
    assert dead_letters(http, function="plain") == []
    listed = cli(server, "dead-letters", "list", "--function", "gated")
    assert listed.returncode == 0, listed.stderr
    assert task_id in listed.stdout and "RuntimeError" in listed.stdout

    gate.touch()
    resp = http.post(f"/v1/dead-letters/{task_id}:rerun")
    assert resp.status_code == 202, resp.text
    rerun = resp.json()
    assert rerun["rerun_of"] == task_id and rerun["status"] == "Enqueued"
    ran = wait_terminal(http, rerun["task_id"])
    assert (ran["status"], ran["result"], ran["rerun_of"]) == ("Succeeded", "passed", task_id)
    (entry,) = dead_letters(http)
    assert entry["rerun_as"] == rerun["task_id"] and entry["rerun_at"] is not None

    again = http.post(f"/v1/dead-letters/{task_id}:rerun")
    assert again.status_code == 409, again.text
    error = again.json()["error"]
    assert (error["code"], error["rerun_as"]) == ("already_rerun", rerun["task_id"])
    refused = cli(server, "dead-letters", "rerun", task_id)
    assert refused.returncode == 1 and rerun["task_id"] in refused.stderr
    unknown = http.post("/v1/dead-letters/nope:rerun")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "dead_letter_not_found"
    not_listed = http.post(f"/v1/dead-letters/{plain['id']}:rerun")
    assert not_listed.status_code == 404, not_listed.text
    assert http.get("/v1/dead-letters", params={"cursor": "x"}).status_code == 400


def test_the_cli_and_the_clients_rerun_a_dead_letter(node: tuple[Server, httpx.Client]) -> None:
    server, http = node
    policy = {"max_retries": 0, "on_dead_letter": {"type": "list"}}
    deploy(http, "broken", BROKEN, **{"async": policy})
    first, second = invoke(http, "broken"), invoke(http, "broken")
    assert {wait_terminal(http, t)["status"] for t in (first, second)} == {"Failed"}
    with Client(server.url) as client:
        page = client.dead_letters.list(function="broken", limit=1)
        assert len(page["items"]) == 1 and page["next_cursor"]
        assert {e["task_id"] for e in client.dead_letters.iter("broken")} == {first, second}

    done = cli(server, "dead-letters", "rerun", first)

    assert done.returncode == 0, done.stderr
    new_id = done.stdout.strip()
    assert wait_terminal(http, new_id)["rerun_of"] == first
    by_id = {e["task_id"]: e for e in dead_letters(http, function="broken")}
    assert by_id[first]["rerun_as"] == new_id

    async def rerun_twice() -> tuple[dict[str, Any], ConflictError]:
        async with AsyncClient(server.url) as client:
            answer = await client.dead_letters.rerun(second)
            with pytest.raises(ConflictError) as refused:
                await client.dead_letters.rerun(second)
            return answer, refused.value

    answer, refused = asyncio.run(rerun_twice())
    assert answer["rerun_of"] == second and refused.code == "already_rerun"
    assert answer["task_id"] in refused.message


def test_an_http_dead_letter_destination_gets_the_record_marked(
    node: tuple[Server, httpx.Client], receiver: Receiver
) -> None:
    _, http = node
    policy = {
        "max_retries": 0,
        "on_failure": hook(receiver.url),
        "on_dead_letter": hook(receiver.url),
    }
    deploy(http, "broken", BROKEN, **{"async": policy})
    task_id = invoke(http, "broken")

    got = receiver.wait_for(2)

    assert all(r.signed and r.record["id"] == task_id for r in got)
    marked = [r for r in got if r.headers.get("X-Asyncfn-Dead-Letter") == "true"]
    (dead,) = marked
    assert dead.record["dead_letter"] is True and dead.record["status"] == "Failed"
    (plain,) = [r for r in got if r is not dead]
    assert "dead_letter" not in plain.record
    assert [e["task_id"] for e in dead_letters(http)] == [task_id]
    shown = http.get("/v1/functions/broken").json()["async"]["on_dead_letter"]
    assert shown["secret"] == "(set)"


def test_the_handler_context_carries_the_cloudevents_attributes(
    node: tuple[Server, httpx.Client],
) -> None:
    _, http = node
    deploy(http, "attrs", ATTRIBUTES)
    deploy(http, "attrs-cmd", None, runtime="command", command=["python3", "-c", CE_ENV])
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "evt-1",
        "ce-source": "/orders",
        "ce-type": "com.example.order.created",
        "ce-traceparent": "00-abc-def-01",
        "Content-Type": "application/json",
    }
    python = http.post("/v1/functions/attrs/cloudevents", content=b"{}", headers=headers)
    command = http.post("/v1/functions/attrs-cmd/cloudevents", content=b"{}", headers=headers)
    assert python.status_code == command.status_code == 202, (python.text, command.text)

    ran = wait_terminal(http, python.json()["task_id"])
    assert ran["status"] == "Succeeded", ran
    assert ran["result"]["attributes"] == ran["attributes"]
    assert ran["result"]["attributes"]["id"] == "evt-1"
    assert ran["result"]["attributes"]["traceparent"] == "00-abc-def-01"
    plain = wait_terminal(http, invoke(http, "attrs"))
    assert plain["result"] == {"attributes": {}}
    env = wait_terminal(http, command.json()["task_id"])
    assert env["status"] == "Succeeded", env
    assert env["result"]["CE_ID"] == "evt-1" and env["result"]["CE_SOURCE"] == "/orders"
    assert env["result"]["CE_TRACEPARENT"] == "00-abc-def-01"
