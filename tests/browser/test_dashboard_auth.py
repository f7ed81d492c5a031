"""The dashboard on a node that needs an API key: the sign-in panel, a refused key, the admin
key kept for the tab only, the live log tail over an authenticated fetch, and signing out."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from tests.browser.support import submit
from tests.e2e.harness import Server, deploy, free_port, wait_terminal

ADMIN = "admin-key-for-the-browser-suite-0123456789"

# Prints a line every 0.1 s until the file named in the payload exists (or 60 s went by), so
# the test decides when the task ends and its log is still growing while the page follows it.
CHATTY = """
import json
import os
import time

def handler(event, context):
    stop_file = json.loads(event)["stop_file"]
    for i in range(600):
        print(f"tick {i}", flush=True)
        if os.path.exists(stop_file):
            break
        time.sleep(0.1)
    print("chatty finished", flush=True)
    return {"ticks": i + 1}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("browser-auth") / "data"
    srv = Server(data, free_port(), env={"ASYNCFN_ADMIN_KEY": ADMIN}).start()
    try:
        with httpx.Client(base_url=srv.url, timeout=30, headers=bearer(ADMIN)) as http:
            deploy(http, "chatty", CHATTY, timeout_s=120)
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30, headers=bearer(ADMIN)) as client:
        yield client


@pytest.fixture
def console(page: Page) -> list[str]:
    messages: list[str] = []

    def record(msg: ConsoleMessage) -> None:
        messages.append(msg.text)

    page.on("console", record)
    return messages


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def sign_in(page: Page, key: str) -> None:
    panel = page.get_by_test_id("signin")
    expect(panel).to_be_visible()
    field = panel.get_by_label("API key", exact=True)
    expect(field).to_have_attribute("type", "password")
    field.fill(key)
    panel.get_by_role("button", name="Use key").click()


def test_unauthenticated_api_answers_401(server: Server) -> None:
    resp = httpx.get(f"{server.url}/v1/functions", timeout=10)
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "unauthorized"


def test_sign_in_refused_key_then_admin_key_then_sign_out(
    page: Page, server: Server, console: list[str]
) -> None:
    page.goto("/")
    expect(page.get_by_test_id("node-name")).to_have_text("e2e-node")
    panel = page.get_by_test_id("signin")
    expect(panel.get_by_role("heading")).to_have_text("This node needs an API key")
    expect(page.get_by_test_id("signin-error")).to_contain_text("needs an API key")
    expect(panel.get_by_label("API key", exact=True)).to_be_focused()
    expect(page.get_by_test_id("sign-out")).to_be_hidden()

    sign_in(page, "not-the-key")
    expect(page.get_by_test_id("signin-error")).to_contain_text("API key is not valid")
    expect(panel.get_by_label("API key", exact=True)).to_have_value("")
    expect(page.get_by_test_id("sign-out")).to_be_hidden()

    sign_in(page, ADMIN)
    row = page.locator('[data-testid=function-row][data-function="chatty"]')
    expect(row).to_be_visible()
    expect(page.get_by_test_id("signin")).to_have_count(0)
    expect(page.get_by_test_id("sign-out")).to_be_visible()
    assert page.evaluate("() => sessionStorage.getItem('asyncfn.apiKey')") == ADMIN
    assert page.evaluate("() => localStorage.length") == 0

    page.get_by_role("link", name="Tasks", exact=True).click()
    expect(page.get_by_test_id("tasks-table")).to_be_visible()
    expect(page.get_by_test_id("signin")).to_have_count(0)

    page.get_by_test_id("sign-out").click()
    expect(page.get_by_test_id("signin")).to_be_visible()
    expect(page.get_by_test_id("sign-out")).to_be_hidden()
    expect(page.get_by_test_id("tasks-table")).to_have_count(0)
    assert page.evaluate("() => sessionStorage.getItem('asyncfn.apiKey')") is None

    assert ADMIN not in page.url
    assert not [text for text in console if ADMIN in text]


def test_task_page_follows_the_live_log_with_the_key(
    page: Page, http: httpx.Client, tmp_path: Path, console: list[str]
) -> None:
    stop_file = tmp_path / "stop"
    task_id = submit(http, "chatty", json.dumps({"stop_file": str(stop_file)}))
    try:
        page.goto(f"/#/task/{task_id}")
        sign_in(page, ADMIN)
        # Signing in re-renders the view that asked for the key: this task.
        expect(page.get_by_test_id("task-id")).to_have_text(task_id)
        expect(page.get_by_test_id("task-status")).to_have_text("Running")
        lines = page.get_by_test_id("log-line")
        expect(lines.first).to_contain_text("tick 0")
        expect(lines.nth(3)).to_contain_text("tick 3")
        expect(page.get_by_test_id("task-status")).to_have_text("Running")
    finally:
        stop_file.touch()
    assert wait_terminal(http, task_id)["status"] == "Succeeded"
    expect(page.get_by_test_id("task-status")).to_have_text("Succeeded")
    expect(lines.last).to_contain_text("chatty finished")
    expect(page.get_by_text("log complete")).to_be_visible()
    seqs = [int(s) for s in lines.evaluate_all("els => els.map((el) => el.dataset.seq)")]
    assert seqs == sorted(set(seqs)), "each log line once, in order"
    texts = lines.all_inner_texts()
    ticks = [int(m.group(1)) for t in texts if (m := re.search(r"tick (\d+)", t))]
    assert ticks == list(range(len(ticks)))

    assert ADMIN not in page.url
    assert not [text for text in console if ADMIN in text]
