"""What the browser tests and the screenshot script share: the browser launch and the demo
functions deployed to a real server."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from tests.e2e.harness import deploy

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

QUICK = """
def handler(event, context):
    context.logger.info("got %d bytes", len(event))
    return {"echo": event.decode(), "ok": True}
"""

SLOW = """
import time

def handler(event, context):
    context.logger.info("slow task started")
    for i in range(600):
        context.progress(i / 600, f"step {i}")
        time.sleep(0.1)
    return "done"
"""

BOOM = """
def handler(event, context):
    context.logger.info("about to fail")
    raise ValueError("bad input <script>alert(1)</script> & more")
"""

FUNCTIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "quick": (QUICK, {}),
    "slow": (SLOW, {"timeout_s": 120, "stop_grace_s": 1}),
    "boom": (BOOM, {"async": {"max_retries": 0}}),
}


def deploy_all(http: httpx.Client, functions: dict[str, tuple[str, dict[str, Any]]]) -> None:
    for name, (code, config) in functions.items():
        deploy(http, name, code, **config)


def submit(http: httpx.Client, function: str, payload: bytes | str = b"{}") -> str:
    resp = http.post(
        f"/v1/functions/{function}/invocations",
        content=payload,
        headers={"X-Invocation-Type": "Async"},
    )
    assert resp.status_code == 202, resp.text
    return str(resp.json()["task_id"])


def launch(pw: Playwright) -> Browser:
    return pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
