"""Flow control on a real node: running caps per function and per tenant (checked from the
recorded attempt start and finish times), the dispatch rate limit, limits changed at runtime,
and the tenant submit rate answering 429 without losing or half-taking anything."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.harness import Server, deploy, free_port, wait_terminal

pytestmark = pytest.mark.timeout(120)

ADMIN = "admin-key-for-the-flow-suite-0123456789"
SLEEPY = "import time\n\ndef handler(event, context):\n    time.sleep(float(event or 0))\n"
NOOP = "def handler(event, context):\n    return None\n"


def submit(http: httpx.Client, name: str, count: int, body: bytes = b"") -> list[str]:
    items = [{"payload": body.decode()} for _ in range(count)]
    resp = http.post(f"/v1/functions/{name}/invocations:batch", json=items)
    assert resp.status_code == 202, resp.text
    return [item["task_id"] for item in resp.json()["items"]]


def spans(
    tasks: list[dict[str, Any]], begin: str = "instance_started_at"
) -> list[tuple[float, float]]:
    """(`begin`, finished) of every attempt, in seconds. For caps, `instance_started_at`: the
    instance begins only once the claim has committed, so these spans lie within the store's
    running intervals; for the dispatch rate, `started_at`, the claim itself."""
    out = []
    for task in tasks:
        for attempt in task["attempts"]:
            start = datetime.fromisoformat(attempt[begin]).timestamp()
            end = datetime.fromisoformat(attempt["finished_at"]).timestamp()
            out.append((start, end))
    return out


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    """The largest number of intervals holding at one moment (an end before a start at a tie)."""
    edges = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


def run_all(http: httpx.Client, ids: list[str], timeout: float = 60) -> list[dict[str, Any]]:
    tasks = [wait_terminal(http, task_id, timeout) for task_id in ids]
    assert {t["status"] for t in tasks} == {"Succeeded"}, [t["status"] for t in tasks]
    return tasks


def test_max_concurrency_caps_running_tasks_below_the_pool(http: httpx.Client) -> None:
    deploy(http, "capped", SLEEPY, max_instances=4, max_concurrency=2)
    tasks = run_all(http, submit(http, "capped", 10, b"0.2"))
    assert most_at_once(spans(tasks)) == 2


def test_a_cap_changed_at_runtime_holds_without_a_restart(http: httpx.Client) -> None:
    fn = deploy(http, "retuned", SLEEPY, max_instances=4, max_concurrency=1)
    first = run_all(http, submit(http, "retuned", 4, b"0.1"))
    assert most_at_once(spans(first)) == 1
    fn.update(max_concurrency=3)
    for key in ("name", "paused", "created_at", "updated_at", "code_sha256", "tenant"):
        fn.pop(key, None)
    resp = http.put("/v1/functions/retuned", json=fn)
    assert resp.status_code == 200, resp.text
    assert resp.json()["max_concurrency"] == 3
    second = run_all(http, submit(http, "retuned", 9, b"0.3"))
    assert 1 < most_at_once(spans(second)) <= 3
    # the warm pool was kept: the instance of the first round serves the second too
    first_instances = {t["instance_id"] for t in first}
    assert first_instances & {t["instance_id"] for t in second}


def test_rate_limit_spaces_dispatches_within_ten_percent(http: httpx.Client) -> None:
    rate, burst, count = 20.0, 2, 42
    deploy(http, "paced", NOOP, max_instances=2, rate_limit=rate, rate_burst=burst)
    tasks = run_all(http, submit(http, "paced", count))
    starts = sorted(start for start, _ in spans(tasks, "started_at"))
    for i, at in enumerate(starts):  # never ahead of the bucket (1 ms for the clock's rounding)
        assert i + 1 <= burst + rate * (at - starts[0] + 0.001), (i, at - starts[0])
    measured = (count - burst) / (starts[-1] - starts[0])
    assert abs(measured - rate) <= rate * 0.10, measured


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path / "data", free_port(), env={"ASYNCFN_ADMIN_KEY": ADMIN}).start()
    try:
        yield srv
    finally:
        srv.stop()


def tenant_client(srv: Server, name: str, **quotas: Any) -> httpx.Client:
    admin = httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {ADMIN}"})
    with admin:
        assert admin.post("/v1/tenants", json={"name": name}).status_code == 201
        made = admin.post(f"/v1/tenants/{name}/keys", json={}).json()
        resp = admin.patch(f"/v1/tenants/{name}", json=quotas)
        assert resp.status_code == 200, resp.text
        for field, value in quotas.items():
            assert resp.json()[field] == value
    return httpx.Client(
        base_url=srv.url, headers={"Authorization": f"Bearer {made['key']}"}, timeout=30
    )


def test_tenant_max_running_caps_all_its_functions_together(secured: Server) -> None:
    with tenant_client(secured, "acme", max_running=2) as http:
        deploy(http, "one", SLEEPY, max_instances=3)
        deploy(http, "two", SLEEPY, max_instances=3)
        ids = submit(http, "one", 5, b"0.2") + submit(http, "two", 5, b"0.2")
        tasks = run_all(http, ids)
        assert most_at_once(spans(tasks)) == 2


def test_over_the_submit_rate_the_api_answers_429_and_takes_nothing(secured: Server) -> None:
    with tenant_client(secured, "bursty", submit_rate=0.5, submit_burst=3) as http:
        deploy(http, "noop", NOOP)
        accepted = [
            http.post("/v1/functions/noop/invocations", content=b"{}").status_code for _ in range(3)
        ]
        assert accepted == [202, 202, 202]
        refused = http.post("/v1/functions/noop/invocations", content=b"{}")
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) >= 1
        error = refused.json()["error"]
        assert error["code"] == "rate_limited" and error["retry_after_s"] > 0
        batch = http.post("/v1/functions/noop/invocations:batch", json=[{}, {}])
        assert batch.status_code == 429
        listed = http.get("/v1/tasks", params={"function": "noop"}).json()["items"]
        assert len(listed) == 3
        admin = httpx.Client(base_url=secured.url, headers={"Authorization": f"Bearer {ADMIN}"})
        with admin:  # lifting the quota takes effect at once
            resp = admin.patch("/v1/tenants/bursty", json={"submit_rate": None})
            assert resp.status_code == 200 and resp.json()["submit_rate"] is None
            assert resp.json()["submit_burst"] == 3
        assert http.post("/v1/functions/noop/invocations", content=b"{}").status_code == 202


def test_bad_limits_are_refused_naming_the_field(http: httpx.Client) -> None:
    bad = [
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"rate_limit": -1}, "rate_limit"),
        ({"rate_burst": 5}, "rate_burst"),
    ]
    for config, field in bad:
        resp = http.put("/v1/functions/bad", json={"handler": "main:handler", **config})
        assert resp.status_code == 422, resp.text
        assert resp.json()["error"]["field"] == field
    assert http.get("/v1/functions/bad").status_code == 404
