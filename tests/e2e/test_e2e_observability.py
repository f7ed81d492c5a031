"""Observability against a real node: /metrics, function stats, task timelines and JSON logs."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import orjson

from tests.e2e.harness import Server, deploy, free_port, wait_terminal

WORKER = """
import time

def handler(event, context):
    end = time.process_time() + 0.03
    while time.process_time() < end:
        pass
    if event == b"fail" or (event == b"flaky" and context.attempt == 1):
        raise ValueError("asked to fail")
    if event == b"sleep":
        time.sleep(1.5)
    return "ok"
"""


def invoke(http: httpx.Client, name: str, body: bytes) -> str:
    resp = http.post(f"/v1/functions/{name}/invocations", content=body)
    assert resp.status_code == 202, resp.text
    return str(resp.json()["task_id"])


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the Prometheus text `text`, 0 when absent."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(r"([a-z_]+)(?:\{(.*)\})? (\S+)", line)
        if match and match[1] == name:
            got = ",".join(sorted((match[2] or "").split(","))) if match[2] else ""
            if got == want:
                return float(match[3])
    return 0.0


def test_metrics_and_stats_count_what_ran(http: httpx.Client) -> None:
    deploy(
        http,
        "work",
        WORKER,
        **{"async": {"max_retries": 1, "retry_backoff": {"base_s": 0.05, "max_s": 0.05}}},
    )
    ok = [invoke(http, "work", b"ok") for _ in range(3)]
    failed = invoke(http, "work", b"fail")  # fails twice: one retry, then Failed
    flaky = invoke(http, "work", b"flaky")  # fails once, then succeeds
    for task_id in [*ok, failed, flaky]:
        wait_terminal(http, task_id)

    resp = http.get("/metrics")
    text = resp.text
    stats = http.get("/v1/functions/work/stats").json()

    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    assert sample(text, "asyncfn_submissions_total", function="work") == 5
    assert sample(text, "asyncfn_finishes_total", function="work", status="Succeeded") == 4
    assert sample(text, "asyncfn_finishes_total", function="work", status="Failed") == 1
    assert sample(text, "asyncfn_retries_total", function="work") == 2
    assert sample(text, "asyncfn_run_seconds_count", function="work") == 7
    assert sample(text, "asyncfn_queue_wait_seconds_count", function="work") == 7
    assert sample(text, "asyncfn_end_to_end_seconds_count", function="work") == 5
    assert sample(text, "asyncfn_end_to_end_seconds_bucket", function="work", le="3600.0") == 5
    assert sample(text, "asyncfn_running_tasks", function="work") == 0
    assert sample(text, "asyncfn_instances", function="work") >= 1
    assert sample(text, "asyncfn_queue_depth", function="work") == 0
    assert stats["function"] == "work"
    assert stats["counts"]["Succeeded"] == 4
    assert stats["counts"]["Failed"] == 1
    assert stats["counts"]["Enqueued"] == 0
    assert (stats["queued"], stats["running"]) == (0, 0)
    assert stats["instances"]["total"] >= 1
    assert stats["resources"]["cpu_ms"] > 0
    assert stats["resources"]["max_rss_mb"] > 0
    for kind in ("queue_wait", "run", "end_to_end"):
        p = stats["latency_ms"][kind]
        assert 0 <= p["p50"] <= p["p95"] <= p["p99"], kind
    assert stats["latency_ms"]["run"]["p50"] >= 30
    assert stats["rates"]["finished_per_s_1m"] > 0
    assert http.get("/v1/functions/nope/stats").status_code == 404


def test_queue_depth_and_age_show_waiting_tasks(http: httpx.Client) -> None:
    deploy(http, "work", WORKER)
    http.post("/v1/functions/work:suspend")
    for _ in range(3):
        invoke(http, "work", b"ok")
    time.sleep(0.2)

    text = http.get("/metrics").text

    assert sample(text, "asyncfn_queue_depth", function="work") == 3
    assert sample(text, "asyncfn_oldest_task_age_seconds", function="work") >= 0.2
    assert http.get("/v1/functions/work/stats").json()["queued"] == 3


def test_timeline_shows_queue_cold_start_each_attempt_and_suspension(
    http: httpx.Client,
) -> None:
    deploy(
        http,
        "work",
        WORKER,
        **{"async": {"max_retries": 1, "retry_backoff": {"base_s": 0.05, "max_s": 0.05}}},
    )
    flaky = wait_terminal(http, invoke(http, "work", b"flaky"))
    sleeper = invoke(http, "work", b"sleep")
    deadline = time.monotonic() + 20
    while http.get(f"/v1/tasks/{sleeper}").json()["status"] != "Running":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.2)
    assert http.post(f"/v1/tasks/{sleeper}:suspend").status_code == 200
    time.sleep(0.5)
    assert http.post(f"/v1/tasks/{sleeper}:resume").status_code == 200
    slept = wait_terminal(http, sleeper)

    line = flaky["timeline"]
    assert flaky["status"] == "Succeeded"
    assert line["queued_ms"] >= 0
    assert line["cold_start_ms"] is not None and line["cold_start_ms"] >= 0
    assert len(line["running_ms"]) == 2
    assert all(ms >= 30 for ms in line["running_ms"])
    assert line["suspended_ms"] == 0
    assert line["delivering_ms"] is None
    assert all(a["instance_started_at"] is not None for a in flaky["attempts"])
    assert slept["status"] == "Succeeded"
    assert slept["timeline"]["suspended_ms"] >= 500
    assert len(slept["timeline"]["running_ms"]) == 1
    assert slept["timeline"]["running_ms"][0] >= 1500


def test_serve_with_json_log_format_writes_json_lines(tmp_path: Path) -> None:
    server = Server(tmp_path / "data", free_port(), env={"ASYNCFN_LOG_FORMAT": "json"}).start()
    try:
        httpx.get(f"{server.url}/healthz")
    finally:
        server.stop()

    lines = [
        line
        for line in server.log().splitlines()
        if line.strip() and not line.startswith("asyncfn: dashboard")
    ]
    records = [orjson.loads(line) for line in lines]
    assert records, server.log()
    assert all(set(r) == {"time", "level", "logger", "message", "exc"} for r in records)
    assert any(r["logger"].startswith("uvicorn") for r in records)
