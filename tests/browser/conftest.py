"""Fixtures of the browser suite: one real server with a few functions and one headless Debian
Chromium for the module, a fresh page per test. Skipped without /usr/bin/chromium unless `CI`
is set, where a missing browser fails the suite instead."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import playwright.sync_api as playwright_sync
import pytest

from tests.browser.support import CHROMIUM, FUNCTIONS, deploy_all, launch
from tests.e2e.harness import Server, free_port


def _require_chromium() -> None:
    if Path(CHROMIUM).exists():
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but {CHROMIUM} is missing: apt-get install chromium")
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium); set CI to make this fail")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("browser") / "data", free_port()).start()
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as http:
            deploy_all(http, FUNCTIONS)
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def browser() -> Iterator[playwright_sync.Browser]:
    _require_chromium()
    with playwright_sync.sync_playwright() as pw:
        browser = launch(pw)
        playwright_sync.expect.set_options(timeout=15_000)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: playwright_sync.Browser, server: Server) -> Iterator[playwright_sync.Page]:
    context = browser.new_context(base_url=server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
