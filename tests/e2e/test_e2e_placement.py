"""Placement labels on a real node: a function requiring gpu=1 waits Enqueued (and stats call
it unplaceable) on a node without the label, and runs on a node started with --label gpu=1."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.e2e.harness import Server, deploy, free_port, wait_terminal

HANDLER = "def handler(event, context):\n    return 'ran'\n"


def test_a_function_requiring_a_label_waits_on_a_node_without_it(
    server: Server, http: httpx.Client
) -> None:
    deploy(http, "gpu-job", HANDLER, requires={"gpu": "1"})
    deploy(http, "any-job", HANDLER)
    waiting = http.post("/v1/functions/gpu-job/invocations", json={}).json()["task_id"]
    ran = http.post("/v1/functions/any-job/invocations", json={}).json()["task_id"]
    assert wait_terminal(http, ran)["status"] == "Succeeded"
    time.sleep(1.5)  # more than a dispatcher sweep
    assert http.get(f"/v1/tasks/{waiting}").json()["status"] == "Enqueued"

    stats = http.get("/v1/functions/gpu-job/stats").json()
    assert stats["placement"] == {"requires": {"gpu": "1"}, "placeable": False, "nodes": []}
    assert stats["queued"] == 1
    open_stats = http.get("/v1/functions/any-job/stats").json()
    assert open_stats["placement"] == {"requires": {}, "placeable": True, "nodes": ["e2e-node"]}
    (node,) = http.get("/v1/nodes").json()["items"]
    assert (node["name"], node["role"], node["labels"]) == ("e2e-node", "all", {})

    # Dropping the requirement makes it placeable here: the waiting task runs.
    deploy(http, "gpu-job", HANDLER, requires={})
    assert wait_terminal(http, waiting)["status"] == "Succeeded"


def test_a_labelled_node_runs_the_function_and_bad_requires_are_refused(tmp_path: Path) -> None:
    srv = Server(tmp_path / "data", free_port(), args=["--label", "gpu=1", "--label", "mem=high"])
    srv.start()
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as http:
            deploy(http, "gpu-job", HANDLER, requires={"gpu": "1"})
            task_id = http.post("/v1/functions/gpu-job/invocations", json={}).json()["task_id"]
            task = wait_terminal(http, task_id)
            assert (task["status"], task["result"], task["node"]) == (
                "Succeeded",
                "ran",
                "e2e-node",
            )
            stats = http.get("/v1/functions/gpu-job/stats").json()
            assert stats["placement"]["placeable"] is True
            assert stats["placement"]["nodes"] == ["e2e-node"]
            labels = http.get("/v1/nodes").json()["items"][0]["labels"]
            assert labels == {"gpu": "1", "mem": "high"}

            bad = http.put(
                "/v1/functions/bad",
                json={"handler": "main:handler", "requires": {"no spaces": "1"}},
            )
            assert bad.status_code == 422, bad.text
            # A function that stops matching is retired here: its next task waits.
            deploy(http, "gpu-job", HANDLER, requires={"gpu": "2"})
            later = http.post("/v1/functions/gpu-job/invocations", json={}).json()["task_id"]
            time.sleep(1.5)
            assert http.get(f"/v1/tasks/{later}").json()["status"] == "Enqueued"
    finally:
        srv.stop()
