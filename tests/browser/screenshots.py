"""Regenerates docs/img/dashboard-*.png from a real server with a few tasks:
`.venv/bin/python -m tests.browser.screenshots` (needs /usr/bin/chromium)."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import expect, sync_playwright

from tests.browser.support import FUNCTIONS, deploy_all, launch, submit
from tests.e2e.harness import Server, free_port, wait_terminal

OUT = Path(__file__).resolve().parents[2] / "docs" / "img"

TRANSCODE = """
import time

def handler(event, context):
    context.logger.info("probing input %s", event.decode())
    for i in range(1, 400):
        time.sleep(0.25)
        context.progress(i / 400, f"segment {i} of 400")
        if i % 2 == 0:
            context.logger.info("encoded segment %d (1080p, 2.1 MB)", i)
    return {"segments": 400}
"""


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp) / "data", free_port()).start()
        try:
            with httpx.Client(base_url=server.url, timeout=30) as http:
                deploy_all(http, {**FUNCTIONS, "transcode": (TRANSCODE, {"timeout_s": 600})})
                done = [submit(http, "quick", f'{{"n": {i}}}') for i in range(6)]
                done += [submit(http, "boom", '{"width": -1}')]
                for task_id in done:
                    wait_terminal(http, task_id)
                stopped = submit(http, "slow")
                time.sleep(0.5)
                http.post(f"/v1/tasks/{stopped}:stop")
                submit(http, "slow")
                running = submit(http, "transcode", '"s3://media/intro.mov"')
                time.sleep(3.5)
                with sync_playwright() as pw:
                    browser = launch(pw)
                    page = browser.new_page(viewport={"width": 1280, "height": 760})
                    page.goto(f"{server.url}/#/tasks")
                    expect(page.get_by_test_id("task-row")).to_have_count(10)
                    page.screenshot(path=str(OUT / "dashboard-tasks.png"))
                    page.set_viewport_size({"width": 1280, "height": 1100})
                    page.goto(f"{server.url}/#/task/{running}")
                    expect(page.get_by_test_id("log-line").nth(4)).to_be_visible()
                    page.screenshot(path=str(OUT / "dashboard-task.png"))
                    browser.close()
        finally:
            server.stop()
    print(f"wrote {OUT}/dashboard-tasks.png and dashboard-task.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
