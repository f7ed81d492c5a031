"""Fleet control in the dashboard: dead letters with their rerun, bulk stop over the tasks
filter (dry-run count, confirm, progress) and a function's busiest concurrency key."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from tests.browser.support import BOOM, SLOW, submit
from tests.e2e.harness import deploy, wait_terminal

SLEEPER = """
import time

def handler(event, context):
    time.sleep(60)
"""


def test_a_dead_letter_is_listed_and_rerun_with_one_click(page: Page, http: httpx.Client) -> None:
    deploy(
        http, "dl-boom", BOOM, **{"async": {"max_retries": 0, "on_dead_letter": {"type": "list"}}}
    )
    task_id = submit(http, "dl-boom")
    assert wait_terminal(http, task_id)["status"] == "Failed"
    page.goto("/#/dead-letters")
    row = page.locator(f'[data-testid=dead-letter-row][data-task-id="{task_id}"]')
    expect(row).to_be_visible()
    expect(row.get_by_test_id("task-status")).to_have_text("Failed")
    expect(row).to_contain_text("ValueError")
    row.get_by_test_id("dl-rerun").click()
    link = row.get_by_test_id("dl-rerun-link")
    expect(link).to_be_visible()
    listed = http.get("/v1/dead-letters", params={"function": "dl-boom"}).json()["items"]
    rerun_as = next(i["rerun_as"] for i in listed if i["task_id"] == task_id)
    assert rerun_as
    assert http.get(f"/v1/tasks/{rerun_as}").json()["rerun_of"] == task_id
    link.click()
    expect(page.get_by_test_id("task-id")).to_have_text(rerun_as)


def test_bulk_stop_counts_first_then_stops_every_matching_task(
    page: Page, http: httpx.Client
) -> None:
    deploy(http, "held", SLOW)
    assert http.post("/v1/functions/held:suspend").status_code == 200
    ids = [submit(http, "held", f'{{"n": {i}}}') for i in range(30)]
    other = submit(http, "dl-boom")
    page.goto("/#/tasks?function=held&status=Enqueued")
    page.get_by_test_id("bulk-stop").click()
    expect(page.get_by_test_id("bulk-count")).to_have_text("30 tasks match this filter now.")
    assert http.get(f"/v1/tasks/{ids[0]}").json()["status"] == "Enqueued"  # a dry run only
    page.get_by_test_id("bulk-confirm").click()
    expect(page.get_by_test_id("bulk-op-status")).to_have_attribute("data-status", "succeeded")
    expect(page.get_by_test_id("op-counts")).to_have_text("30 done · 0 skipped · 30 matched")
    assert {http.get(f"/v1/tasks/{t}").json()["status"] for t in ids} == {"Stopped"}
    assert wait_terminal(http, other)["status"] == "Failed"  # another function's task untouched
    page.get_by_role("link", name="Operations", exact=True).first.click()
    row = page.get_by_test_id("operation-row").first
    expect(row).to_have_attribute("data-status", "succeeded")
    expect(row).to_contain_text("stop")


def test_bulk_actions_need_a_filter(page: Page) -> None:
    page.goto("/#/tasks")
    expect(page.get_by_test_id("bulk-stop")).to_be_disabled()
    expect(page.get_by_test_id("bulk-purge")).to_be_disabled()


def test_the_busiest_concurrency_key_shows_on_the_function(page: Page, http: httpx.Client) -> None:
    deploy(
        http,
        "per-customer",
        SLEEPER,
        timeout_s=120,
        stop_grace_s=0,
        concurrency=[{"key": "/customer", "limit": 1}],
    )
    ids = [submit(http, "per-customer", '{"customer": "acme"}') for _ in range(3)]
    page.goto("/")
    cell = page.locator('[data-testid=function-row][data-function="per-customer"]').get_by_test_id(
        "busiest-key"
    )
    expect(cell).to_have_text("/customer=acme: 1/1 running, 2 waiting")
    page.goto(f"/#/task/{ids[0]}")
    expect(page.get_by_test_id("task-keys")).to_have_text("concurrency acme")
    for task_id in ids:
        http.post(f"/v1/tasks/{task_id}:stop")
