"""Destinations end to end: a real node delivers finished tasks to a real HTTP receiver (signed,
retried under one delivery id, surviving kill -9) and to chained functions."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.harness import Server, deploy, free_port, wait_terminal

SECRET = "s3cret"
FAST = {"ASYNCFN_DELIVERY_BACKOFF_BASE_S": "0.05"}
ECHO = "import json\ndef handler(event, context):\n    return {'echo': json.loads(event)}\n"
BROKEN = "def handler(event, context):\n    raise KeyError('nope')\n"

pytestmark = pytest.mark.timeout(90)


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    signed: bool

    @property
    def record(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


class Receiver:
    """A webhook receiver on 127.0.0.1 in a thread: records each request and whether its
    signature verifies; answers 500 to the first `fail_first`, or hangs `hang_s` first."""

    def __init__(self, port: int = 0, *, fail_first: int = 0, hang_s: float = 0.0) -> None:
        self.port = port
        self.fail_first = fail_first
        self.hang_s = hang_s
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.answer(self, body)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def answer(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        headers = dict(handler.headers.items())
        timestamp = headers.get("X-Asyncfn-Timestamp", "")
        mac = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
        signed = hmac.compare_digest(
            headers.get("X-Asyncfn-Signature", ""), f"sha256={mac.hexdigest()}"
        )
        with self._lock:
            self.received.append(Received(headers, body, signed))
            count = len(self.received)
        if count == 1 and self.hang_s:
            time.sleep(self.hang_s)
        handler.send_response(500 if count <= self.fail_first else 204)
        handler.end_headers()

    def wait_for(self, count: int, timeout: float = 30) -> list[Received]:
        wait_until(lambda: len(self.received) >= count, timeout, f"{count} deliveries")
        return list(self.received)


def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} after {timeout}s")
        time.sleep(0.05)


def hook(url: str, **extra: Any) -> dict[str, Any]:
    return {"type": "http", "url": url, "secret": SECRET, **extra}


def invoke(http: httpx.Client, name: str, body: bytes = b"{}") -> str:
    resp = http.post(
        f"/v1/functions/{name}/invocations", content=body, headers={"X-Invocation-Type": "Async"}
    )
    assert resp.status_code == 202, resp.text
    return str(resp.json()["task_id"])


def delivered(http: httpx.Client, task_id: str, timeout: float = 30) -> dict[str, Any]:
    """The task once its (only) delivery is delivered."""

    def check() -> dict[str, Any] | None:
        task = dict(http.get(f"/v1/tasks/{task_id}").json())
        done = task["deliveries"] and task["deliveries"][0]["status"] == "delivered"
        return task if done else None

    return dict(wait_until(check, timeout, f"delivered delivery of {task_id}"))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver().start()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def node(tmp_path: Path) -> Iterator[httpx.Client]:
    srv = Server(tmp_path / "data", free_port(), env=FAST).start()
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as http:
            yield http
    finally:
        srv.stop()


def test_a_succeeded_task_is_posted_signed_to_its_webhook(
    node: httpx.Client, receiver: Receiver
) -> None:
    deploy(node, "echo", ECHO, **{"async": {"on_success": hook(receiver.url)}})
    task_id = invoke(node, "echo", b'{"n": 7}')
    (got,) = receiver.wait_for(1)
    task = delivered(node, task_id)
    (delivery,) = task["deliveries"]
    assert got.signed
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["X-Asyncfn-Delivery"] == delivery["id"]
    assert abs(int(got.headers["X-Asyncfn-Timestamp"]) - time.time()) < 60
    record = got.record
    assert record == {
        "id": task_id,
        "function": "echo",
        "status": "Succeeded",
        "result": {"echo": {"n": 7}},
        "error": None,
        "attempt": 1,
        "max_attempts": 4,
        "created_at": task["created_at"],
        "started_at": task["started_at"],
        "finished_at": task["finished_at"],
        "duration_ms": task["duration_ms"],
    }
    assert delivery == {
        "id": delivery["id"],
        "type": "http",
        "target": receiver.url,
        "status": "delivered",
        "attempts": 1,
        "last_error": None,
        "delivered_at": delivery["delivered_at"],
    }
    assert SECRET not in json.dumps(task)


def test_a_failing_receiver_gets_the_same_delivery_until_it_answers_2xx(
    node: httpx.Client, receiver: Receiver
) -> None:
    receiver.fail_first = 2
    deploy(node, "echo", ECHO, **{"async": {"on_success": hook(receiver.url)}})
    task_id = invoke(node, "echo")
    task = delivered(node, task_id)
    got = receiver.wait_for(3)
    time.sleep(0.3)  # nothing more comes once it was delivered
    assert len(receiver.received) == 3
    assert {r.headers["X-Asyncfn-Delivery"] for r in got} == {task["deliveries"][0]["id"]}
    assert all(r.signed for r in got)
    (delivery,) = task["deliveries"]
    assert (delivery["status"], delivery["attempts"], delivery["last_error"]) == (
        "delivered",
        3,
        None,
    )


def test_a_failed_task_goes_to_on_failure_and_not_on_success(
    node: httpx.Client, receiver: Receiver
) -> None:
    policy = {
        "max_retries": 0,
        "on_success": hook(receiver.url.replace("/hook", "/never")),
        "on_failure": hook(receiver.url),
    }
    deploy(node, "broken", BROKEN, **{"async": policy})
    task_id = invoke(node, "broken")
    task = delivered(node, task_id)
    (got,) = receiver.wait_for(1)
    assert got.record["status"] == "Failed"
    assert got.record["error"]["type"] == "KeyError"
    assert [d["target"] for d in task["deliveries"]] == [receiver.url]


def test_a_function_destination_submits_exactly_one_chained_task(node: httpx.Client) -> None:
    deploy(node, "second", ECHO)
    deploy(
        node, "first", ECHO, **{"async": {"on_success": {"type": "function", "function": "second"}}}
    )
    task_id = invoke(node, "first", b'{"step": 1}')
    first = delivered(node, task_id)
    (delivery,) = first["deliveries"]
    assert (delivery["type"], delivery["target"]) == ("function", "second")
    chained = node.get("/v1/tasks", params={"function": "second"}).json()["items"]
    assert [t["id"] for t in chained] == [delivery["id"]]  # the delivery id de-duplicates it
    second = wait_terminal(node, delivery["id"])
    record = json.loads(second["payload"])
    assert record["id"] == task_id
    assert record["result"] == {"echo": {"step": 1}}
    assert record["chain_depth"] == 1
    assert second["result"] == {"echo": record}


def test_a_delivery_survives_kill_9_while_the_receiver_is_down(tmp_path: Path) -> None:
    receiver = Receiver().start()
    receiver.stop()  # down: its port refuses connections
    srv = Server(tmp_path / "data", free_port(), env=FAST).start()
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as http:
            deploy(http, "echo", ECHO, **{"async": {"on_success": hook(receiver.url)}})
            task_id = invoke(http, "echo")
            wait_terminal(http, task_id)

            def refused() -> bool:
                (delivery,) = http.get(f"/v1/tasks/{task_id}").json()["deliveries"]
                return bool(delivery["attempts"] >= 1 and delivery["last_error"])

            wait_until(refused, 30, "failed delivery attempt")
        srv.kill()
        receiver.start()
        srv = Server(tmp_path / "data", srv.port, env=FAST).start()
        with httpx.Client(base_url=srv.url, timeout=30) as http:
            task = delivered(http, task_id)
        got = receiver.wait_for(1)
        assert {r.headers["X-Asyncfn-Delivery"] for r in got} == {task["deliveries"][0]["id"]}
        assert all(r.signed and r.record["id"] == task_id for r in got)
    finally:
        srv.stop()
        receiver.stop()


def test_function_destinations_that_loop_are_refused(node: httpx.Client) -> None:
    to_b = {"async": {"on_success": {"type": "function", "function": "b"}}}
    deploy(node, "a", ECHO, **to_b)
    resp = node.put(
        "/v1/functions/b",
        json={
            "handler": "main:handler",
            "async": {"on_failure": {"type": "function", "function": "a", "statuses": ["Failed"]}},
        },
    )
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["field"] == "async.on_failure.function"
    assert "b → a → b" in error["message"]
    resp = node.put("/v1/functions/c", json={"handler": "main:handler", **to_b})
    assert resp.status_code == 201  # c → b → (nothing) is no loop


def test_a_destination_is_validated_field_by_field(node: httpx.Client) -> None:
    bad = {"type": "http", "url": "ftp://example.com/x", "secret": "k"}
    resp = node.put(
        "/v1/functions/f", json={"handler": "main:handler", "async": {"on_success": bad}}
    )
    assert resp.status_code == 422
    assert resp.json()["error"]["field"] == "async.on_success.url"


def test_a_receiver_that_hangs_past_the_timeout_is_tried_again(
    node: httpx.Client, receiver: Receiver
) -> None:
    receiver.hang_s = 11.0  # the deliverer gives up on a request after 10 s
    deploy(node, "echo", ECHO, **{"async": {"on_success": hook(receiver.url)}})
    task_id = invoke(node, "echo")
    task = delivered(node, task_id, timeout=40)
    (delivery,) = task["deliveries"]
    assert (delivery["status"], delivery["attempts"]) == ("delivered", 2)
    got = receiver.wait_for(2)
    assert {r.headers["X-Asyncfn-Delivery"] for r in got} == {delivery["id"]}
