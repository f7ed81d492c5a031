"""The dashboard in headless Chromium against a real server process."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, expect

from tests.browser.support import submit
from tests.e2e.harness import wait_terminal


def test_functions_view_lists_the_deployed_functions(page: Page) -> None:
    page.goto("/")
    expect(page.get_by_test_id("node-name")).to_have_text("e2e-node")
    rows = page.get_by_test_id("function-row")
    expect(rows).to_have_count(3)
    for name in ("boom", "quick", "slow"):
        expect(page.locator(f'[data-testid=function-row][data-function="{name}"]')).to_be_visible()
    page.get_by_role("link", name="quick", exact=True).click()
    expect(page).to_have_url(re.compile(r"#/tasks\?function=quick$"))


def test_submitted_task_appears_and_succeeds(page: Page, http: httpx.Client) -> None:
    page.goto("/#/tasks?function=quick")
    expect(page.get_by_test_id("tasks-table")).to_be_visible()
    task_id = submit(http, "quick", '{"n": 1}')
    row = page.locator(f'[data-testid=task-row][data-task-id="{task_id}"]')
    expect(row).to_be_visible()
    expect(row.get_by_test_id("task-status")).to_have_text("Succeeded")
    row.get_by_role("link").click()
    expect(page.get_by_test_id("task-id")).to_have_text(task_id)
    expect(page.get_by_test_id("task-result")).to_contain_text('"ok": true')
    expect(page.get_by_test_id("event-row")).to_have_count(3)
    expect(page.get_by_test_id("log-line").first).to_contain_text("got 8 bytes")
    expect(page.get_by_test_id("action-rerun")).to_be_enabled()
    expect(page.get_by_test_id("action-stop")).to_be_disabled()


def test_status_filter_narrows_the_table(page: Page, http: httpx.Client) -> None:
    ok = submit(http, "quick")
    failed = submit(http, "boom")
    wait_terminal(http, ok)
    wait_terminal(http, failed)
    page.goto("/#/tasks")
    expect(page.locator(f'[data-testid=task-row][data-task-id="{failed}"]')).to_be_visible()
    page.get_by_test_id("filter-status").select_option("Failed")
    expect(page).to_have_url(re.compile(r"status=Failed"))
    expect(page.locator(f'[data-testid=task-row][data-task-id="{failed}"]')).to_be_visible()
    expect(page.locator(f'[data-testid=task-row][data-task-id="{ok}"]')).to_have_count(0)
    statuses = page.get_by_test_id("task-row").get_by_test_id("task-status")
    expect(statuses.first).to_have_text("Failed")
    assert set(statuses.all_inner_texts()) == {"Failed"}


def test_running_task_streams_its_log_and_stops(page: Page, http: httpx.Client) -> None:
    task_id = submit(http, "slow")
    page.goto(f"/#/task/{task_id}")
    expect(page.get_by_test_id("task-status")).to_have_text("Running")
    expect(page.get_by_test_id("log-line").first).to_contain_text("slow task started")
    expect(page.get_by_test_id("action-resume")).to_be_disabled()
    page.get_by_test_id("action-stop").click()
    expect(page.get_by_test_id("task-status")).to_have_text("Stopped")
    expect(page.get_by_test_id("action-rerun")).to_be_enabled()
    assert http.get(f"/v1/tasks/{task_id}").json()["status"] == "Stopped"


def test_failed_task_shows_its_error_as_text(page: Page, http: httpx.Client) -> None:
    task_id = submit(http, "boom")
    assert wait_terminal(http, task_id)["status"] == "Failed"
    page.goto(f"/#/task/{task_id}")
    expect(page.get_by_test_id("task-status")).to_have_text("Failed")
    expect(page.get_by_test_id("error-type")).to_have_text("ValueError")
    expect(page.get_by_test_id("error-message")).to_have_text(
        "bad input <script>alert(1)</script> & more"
    )
    assert page.locator("main script").count() == 0
    expect(page.get_by_text("Traceback", exact=True)).to_be_visible()


def test_refused_action_shows_the_api_error(page: Page, http: httpx.Client) -> None:
    task_id = submit(http, "quick")
    wait_terminal(http, task_id)
    page.goto(f"/#/task/{task_id}")
    expect(page.get_by_test_id("task-status")).to_have_text("Succeeded")
    suspend = page.get_by_test_id("action-suspend")
    expect(suspend).to_be_disabled()
    # A stale page could still offer the button: the server's refusal must reach the user.
    suspend.evaluate("button => { button.disabled = false; }")
    suspend.click()
    alert = page.get_by_role("alert").filter(has_text="Succeeded")
    expect(alert).to_be_visible()


def test_functions_view_counts_tasks_live(page: Page, http: httpx.Client) -> None:
    page.goto("/")
    row = page.locator('[data-testid=function-row][data-function="boom"]')
    expect(row).to_be_visible()
    before = int(row.get_by_test_id("count-failed").inner_text().rstrip("+") or 0)
    wait_terminal(http, submit(http, "boom"))
    expect(row.get_by_test_id("count-failed")).to_have_text(str(before + 1))


def test_functions_view_without_stats_counts_from_the_task_list(
    page: Page, http: httpx.Client
) -> None:
    wait_terminal(http, submit(http, "quick"))
    page.route(
        re.compile(r".*/v1/functions/[^/]+/stats$"),
        lambda route: route.fulfill(
            status=404,
            content_type="application/json",
            body='{"error": {"code": "not_found", "message": "no stats"}}',
        ),
    )
    page.goto("/")
    row = page.locator('[data-testid=function-row][data-function="quick"]')
    expect(row.get_by_test_id("count-succeeded")).to_have_text(re.compile(r"^[1-9]\d*$"))
    expect(row.get_by_test_id("count-failed")).to_have_text("0")
