"""The dashboard marks a function no live node can run (its `requires` matches no node's
labels) as unplaceable, and says which labels it waits for."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from tests.e2e.harness import deploy

HANDLER = "def handler(event, context):\n    return 1\n"


def test_a_function_no_node_can_run_shows_unplaceable(page: Page, http: httpx.Client) -> None:
    deploy(http, "needs-gpu", HANDLER, requires={"gpu": "1"})
    page.goto("/")
    gpu = page.locator('[data-testid=function-row][data-function="needs-gpu"]')
    state = gpu.get_by_test_id("function-state")
    expect(state).to_have_text("unplaceable")
    expect(state).to_have_attribute("title", 'no live node has the labels it requires: {"gpu":"1"}')
    quick = page.locator('[data-testid=function-row][data-function="quick"]')
    expect(quick.get_by_test_id("function-state")).to_have_text("ready")
