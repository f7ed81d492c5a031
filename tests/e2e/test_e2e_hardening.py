"""Hardening end to end on a real node: secrets never echoed (API, CLI, server log) yet kept on a
GET-then-PUT round trip, the webhook allow-list at PUT and at delivery, and every invocation
header's bad values answered 400 naming the header."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.harness import Server, deploy, free_port, wait_terminal
from tests.e2e.test_e2e_destinations import FAST, SECRET, Receiver, hook, wait_until

pytestmark = pytest.mark.timeout(90)

API_KEY = "sk-live-9f8e7d6c5b4a39281706"
REDACTED = "(set)"
READS_ENV = (  # answers a digest of the secret: a task's result is shown, so never the value
    "import hashlib, os\n"
    "def handler(event, context):\n"
    "    key = hashlib.sha256(os.environ.get('API_KEY', '').encode()).hexdigest()\n"
    "    return {'key_sha256': key, 'mode': os.environ.get('MODE')}\n"
)
OK = "def handler(event, context):\n    return 'ok'\n"
PUT_FIELDS = (
    *("runtime", "handler", "command", "timeout_s", "memory_mb", "instance_concurrency"),
    *("min_instances", "max_instances", "async", "env", "priority", "stop_grace_s"),
)


def error_of(resp: httpx.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    return dict(resp.json()["error"])


def as_put_body(function: dict[str, Any]) -> dict[str, Any]:
    """A GET answer made a PUT body: the fields PUT takes, as GET showed them."""
    return {k: v for k, v in function.items() if k in PUT_FIELDS}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver().start()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def verbose_server(tmp_path: Path) -> Iterator[Server]:
    """A node logging as much as it can: debug level and the access log."""
    env = {**FAST, "ASYNCFN_LOG_LEVEL": "debug", "ASYNCFN_ACCESS_LOG": "true"}
    srv = Server(tmp_path / "data", free_port(), env=env).start()
    try:
        yield srv
    finally:
        srv.stop()


# -- secrets ---------------------------------------------------------------------------------


def test_env_values_are_redacted_everywhere_and_kept_on_a_round_trip(
    verbose_server: Server,
) -> None:
    with httpx.Client(base_url=verbose_server.url, timeout=30) as http:
        config = {"env": {"API_KEY": API_KEY, "MODE": "fast"}}
        put = http.put("/v1/functions/f", json={"handler": "main:handler", **config})
        assert put.status_code == 201, put.text
        assert put.json()["env"] == {"API_KEY": REDACTED, "MODE": REDACTED}
        shown = deploy(http, "f", READS_ENV, env=config["env"])
        assert shown["env"] == {"API_KEY": REDACTED, "MODE": REDACTED}
        listed = http.get("/v1/functions").json()["items"]
        assert [f["env"] for f in listed] == [{"API_KEY": REDACTED, "MODE": REDACTED}]

        body = as_put_body(shown)  # read, change one thing, write back
        body["env"]["MODE"] = "slow"
        again = http.put("/v1/functions/f", json=body)
        assert again.status_code == 200, again.text
        assert API_KEY not in again.text
        resp = http.post(
            "/v1/functions/f/invocations", content=b"{}", headers={"X-Invocation-Type": "Sync"}
        )
        assert resp.status_code == 200, resp.text
        digest = hashlib.sha256(API_KEY.encode()).hexdigest()
        assert resp.json() == {"key_sha256": digest, "mode": "slow"}  # the secret was kept

        for where in ("/v1/functions", "/v1/functions/f", f"/v1/tasks/{resp.headers['x-task-id']}"):
            assert API_KEY not in http.get(where).text, where
        cli = [sys.executable, "-m", "asyncfn", "--url", verbose_server.url]
        for args in (["function", "f"], ["functions"]):
            out = subprocess.run([*cli, *args], capture_output=True, text=True, timeout=60)
            assert out.returncode == 0, out.stderr
            assert "API_KEY" in out.stdout or args == ["functions"]
            assert API_KEY not in out.stdout + out.stderr
    log = verbose_server.log()
    assert "/v1/functions/f" in log  # the access log was on: the test can see requests
    assert API_KEY not in log


def test_the_redaction_marker_for_a_variable_never_set_is_422(http: httpx.Client) -> None:
    deploy(http, "f", None, env={"A": "1"})
    resp = http.put("/v1/functions/f", json={"handler": "main:handler", "env": {"B": REDACTED}})
    err = error_of(resp, 422)
    assert err["field"] == "env.B"
    fresh = http.put("/v1/functions/g", json={"handler": "main:handler", "env": {"A": REDACTED}})
    assert error_of(fresh, 422)["field"] == "env.A"
    assert http.get("/v1/functions/f").json()["env"] == {"A": REDACTED}


def test_a_webhook_secret_is_redacted_and_kept_when_sent_back(
    tmp_path: Path, receiver: Receiver
) -> None:
    srv = Server(tmp_path / "data", free_port(), env=FAST).start()
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as http:
            shown = deploy(http, "f", OK, **{"async": {"on_success": hook(receiver.url)}})
            assert shown["async"]["on_success"]["secret"] == REDACTED
            assert SECRET not in http.get("/v1/functions").text
            put = http.put("/v1/functions/f", json=as_put_body(shown))
            assert put.status_code == 200, put.text
            task_id = http.post("/v1/functions/f/invocations", content=b"{}").json()["task_id"]
            wait_terminal(http, task_id)
            (got,) = receiver.wait_for(1)
            assert got.signed  # signed with the real secret, not with "(set)"
    finally:
        srv.stop()


# -- webhook allow-list ----------------------------------------------------------------------


def allow_listed(tmp_path: Path, hosts: str, port: int | None = None) -> Server:
    env = {**FAST, "ASYNCFN_WEBHOOK_ALLOW_HOSTS": hosts}
    return Server(tmp_path / "data", port or free_port(), env=env).start()


def test_a_webhook_outside_the_allow_list_is_422_naming_the_field(
    tmp_path: Path, receiver: Receiver
) -> None:
    srv = allow_listed(tmp_path, f"hooks.example.com, 127.0.0.1:{receiver.port}")
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as http:
            cases = {
                "on_success": "https://evil.example.net/hook",
                "on_failure": "http://127.0.0.1:1/hook",  # the right host, another port
            }
            for key, url in cases.items():
                body = {"handler": "main:handler", "async": {key: hook(url)}}
                err = error_of(http.put("/v1/functions/f", json=body), 422)
                assert err["field"] == f"async.{key}.url"
                assert url in err["message"]
            assert http.get("/v1/functions").json()["items"] == []
            for url in ("https://hooks.example.com/x", receiver.url):
                body = {"handler": "main:handler", "async": {"on_success": hook(url)}}
                assert http.put("/v1/functions/f", json=body).status_code in (200, 201)
    finally:
        srv.stop()


def test_a_delivery_to_a_host_the_allow_list_dropped_since_is_dead(
    tmp_path: Path, receiver: Receiver
) -> None:
    srv = allow_listed(tmp_path, "127.0.0.1")
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as http:
            deploy(http, "f", OK, **{"async": {"on_success": hook(receiver.url)}})
    finally:
        srv.stop()
    srv = allow_listed(tmp_path, "hooks.example.com", srv.port)  # the list changed since
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as http:
            task_id = http.post("/v1/functions/f/invocations", content=b"{}").json()["task_id"]

            def dead() -> dict[str, Any] | None:
                deliveries = http.get(f"/v1/tasks/{task_id}").json()["deliveries"]
                return deliveries[0] if deliveries and deliveries[0]["status"] == "dead" else None

            delivery = wait_until(dead, 30, "dead delivery")
            assert "allow-list" in delivery["last_error"]
            assert delivery["attempts"] == 1  # refused, not retried
    finally:
        srv.stop()
    assert receiver.received == []


def test_an_invalid_allow_list_entry_stops_the_node(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="allow-list entry"):
        allow_listed(tmp_path, "not a host")


def test_an_unknown_instance_user_stops_the_node(tmp_path: Path) -> None:
    env = {"ASYNCFN_INSTANCE_USER": "no-such-user-x"}
    with pytest.raises(RuntimeError, match="no such user"):
        Server(tmp_path / "data", free_port(), env=env).start()


# -- invocation headers ----------------------------------------------------------------------

BAD_HEADERS = {
    "X-Delay-Seconds": ["soon", "", "-1", "nan", "NaN", "inf", "-inf", "1e999", "1_0", "0x10"],
    "X-Run-At": [
        "tomorrow",
        "2030-01-02",  # a date without a time
        "2030-01-02T03:04",  # no seconds
        "2030-W01-1T03:04:05Z",  # an ISO week date
        "20300102T030405Z",  # ISO basic format
        "2030-13-02T03:04:05Z",  # no such month
        "2099-01-02T03:04:05Z",  # more than 7 days ahead
    ],
    "X-Priority": ["high", "1.5", "1.0", "1e1", "11", "-11", "nan", "inf"],
    "X-Task-Id": ["has spaces", "-leading-dash", "x" * 129, "é"],
    "X-Invocation-Type": ["Eventually", "async", "SYNC", ""],
}
GOOD_HEADERS = [
    {"X-Delay-Seconds": "0"},
    {"X-Delay-Seconds": "1.5e3"},
    {"X-Run-At": "2020-01-02T03:04:05Z"},
    {"X-Run-At": "2020-01-02T03:04:05.250+01:00"},
    {"X-Priority": "-10"},
    {"X-Priority": "+10"},
    {"X-Task-Id": "job.1:a_b-c"},
    {"X-Invocation-Type": "Async"},
]


def test_each_bad_invocation_header_is_400_naming_it(http: httpx.Client) -> None:
    deploy(http, "f", OK)
    for header, values in BAD_HEADERS.items():
        for value in values:
            resp = http.post(
                "/v1/functions/f/invocations",
                content=b"x",
                headers={header: value.encode("utf-8")},
            )
            assert resp.status_code == 400, (header, value, resp.text)
            err = resp.json()["error"]
            assert err["field"] == header, (header, value, err)
            assert err["code"] == "malformed" and err["message"], err
    both = {"X-Delay-Seconds": "5", "X-Run-At": "2030-01-02T03:04:05Z"}
    assert error_of(http.post("/v1/functions/f/invocations", headers=both), 400)["field"]
    assert http.get("/v1/tasks").json()["items"] == []
    for headers in GOOD_HEADERS:
        resp = http.post("/v1/functions/f/invocations", content=b"x", headers=headers)
        assert resp.status_code == 202, (headers, resp.text)


def test_a_bad_run_at_in_a_batch_item_is_400_naming_the_item(http: httpx.Client) -> None:
    deploy(http, "f", OK)
    items = [1, {"payload": 2, "run_at": "2030-01-02"}]
    resp = http.post("/v1/functions/f/invocations:batch", json=items)
    assert error_of(resp, 400)["field"] == "[1].run_at"
    assert http.get("/v1/tasks").json()["items"] == []
