"""Requests the API fuzzer (tests/fuzz) once answered with a 500, each now a 4xx."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.harness import deploy, wait_terminal

ECHO = """
def handler(event, context):
    print("one line")
    return "ok"
"""


@pytest.fixture
def ended_task(http: httpx.Client) -> str:
    deploy(http, "echo", ECHO)
    resp = http.post("/v1/functions/echo/invocations", content=b"x", headers={"X-Task-Id": "t1"})
    assert resp.status_code == 202, resp.text
    wait_terminal(http, "t1")
    return "t1"


@pytest.mark.parametrize("follow", ["false", "true"])
def test_logs_after_past_64_bits_is_refused(
    http: httpx.Client, ended_task: str, follow: str
) -> None:
    """SQLite could not bind `after` past 2**63-1 (OverflowError → 500, or a stream cut short)."""
    for after in (2**63, 5562268549992725610496):
        resp = http.get(f"/v1/tasks/{ended_task}/logs", params={"after": after, "follow": follow})
        assert resp.status_code == 422, resp.text
        assert resp.json()["error"]["field"] == "after"
    resp = http.get(f"/v1/tasks/{ended_task}/logs", params={"after": 2**63 - 1, "follow": follow})
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize("cursor", [str(2**63), "9" * 40, "²", "١٢"])
def test_list_cursor_that_is_no_store_sequence_is_refused(http: httpx.Client, cursor: str) -> None:
    """`str.isdigit` passed all: `int()` failed on "²", SQLite on the long ones (500s), and
    Arabic-Indic digits are no cursor the API ever gives."""
    resp = http.get("/v1/tasks", params={"cursor": cursor})
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["field"] == "cursor"
