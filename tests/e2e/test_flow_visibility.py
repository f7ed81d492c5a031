"""Visibility against a real node: a function's stats (due and delayed tasks, the submit rate,
this node's instances and autoscaler, the limits) and `asyncfn top --once` over them."""

from __future__ import annotations

import httpx
from typer.testing import CliRunner

from asyncfn import cli
from tests.e2e.harness import Server, deploy, wait_terminal

WORKER = """
def handler(event, context):
    return "ok"
"""


def submit(http: httpx.Client, name: str, delay_s: float | None = None) -> str:
    headers = {"X-Delay-Seconds": str(delay_s)} if delay_s is not None else {}
    resp = http.post(f"/v1/functions/{name}/invocations", content=b"x", headers=headers)
    assert resp.status_code == 202, resp.text
    return str(resp.json()["task_id"])


def test_stats_show_due_and_delayed_tasks_submit_rate_instances_and_limits(
    http: httpx.Client,
) -> None:
    deploy(
        http,
        "vis",
        WORKER,
        min_instances=1,
        max_concurrency=4,
        rate_limit=50.0,
        rate_burst=10,
    )
    assert wait_terminal(http, submit(http, "vis"))["status"] == "Succeeded"
    assert http.post("/v1/functions/vis:suspend").status_code == 200
    for _ in range(3):
        submit(http, "vis")
    for _ in range(2):
        submit(http, "vis", delay_s=600)

    stats = http.get("/v1/functions/vis/stats").json()

    assert (stats["queued"], stats["delayed"], stats["running"]) == (3, 2, 0)
    assert stats["counts"]["Enqueued"] == 5
    assert stats["rates"]["submitted_per_s_1m"] == round(6 / 60, 3)
    assert stats["rates"]["finished_per_s_1m"] > 0
    assert set(stats["instances"]) == {"total", "idle", "busy", "starting", "target"}
    assert stats["instances"]["total"] >= 1
    assert stats["instances"]["busy"] == 0
    assert isinstance(stats["autoscaler"]["decisions"], list)
    assert stats["limits"] == {
        "max_concurrency": 4,
        "rate_limit": 50.0,
        "rate_burst": 10,
        "min_instances": 1,
        "max_instances": 4,
        "instance_concurrency": 1,
    }
    assert stats["latency_ms"]["run"]["p50"] is not None


def test_top_once_shows_the_nodes_functions(server: Server, http: httpx.Client) -> None:
    deploy(http, "shown", WORKER, max_concurrency=7)
    assert http.post("/v1/functions/shown:suspend").status_code == 200
    submit(http, "shown")
    submit(http, "shown", delay_s=600)

    result = CliRunner().invoke(cli.app, ["--url", server.url, "top", "--once"])

    assert result.exit_code == 0, result.output
    (row,) = [line for line in result.stdout.splitlines() if line.split()[:1] == ["shown"]]
    cells = row.split()
    assert cells[1:4] == ["1", "1", "0"]
    assert cells[-3:] == ["7", "-", "-"]  # max concurrency, rate limit, busiest key
