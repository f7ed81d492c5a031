"""max_concurrency holds across nodes: three nodes with room for two instances each (six in all)
never run more than the function's limit of three at once, and do reach it, which takes at
least two nodes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.cluster.cluster import Cluster, list_tasks, submit_spread, wait_all_ended
from tests.e2e.harness import deploy

LIMIT = 3
PER_NODE = 2
TASKS = 30
SLEEP = "import time\n\ndef handler(event, context):\n    time.sleep(0.2)\n"


def most_at_once(attempts: list[dict[str, Any]]) -> int:
    """The most attempts running handler code at one instant (an end sorts before a start at
    the same time). From `instance_started_at`, not `started_at`: a claim's `started_at` is the
    time its node decided to claim, which may precede the lock wait in which another node's
    finish commits; the instance starts only after the claim committed, so these spans lie
    inside the store's running intervals and can only undercount a breach of the cap."""
    edges = []
    for attempt in attempts:
        edges.append((datetime.fromisoformat(attempt["instance_started_at"]), 1))
        edges.append((datetime.fromisoformat(attempt["finished_at"]), -1))
    running = peak = 0
    for _, step in sorted(edges):
        running += step
        peak = max(peak, running)
    return peak


@pytest.mark.timeout(180)
def test_max_concurrency_holds_across_three_nodes(cluster: Cluster) -> None:
    (first,) = cluster.add()
    with httpx.Client(base_url=first.url, timeout=60) as http:
        deploy(http, "capped", SLEEP, max_concurrency=LIMIT, max_instances=PER_NODE)
        nodes = [first, *cluster.add(2)]
        submit_spread(nodes, "capped", list(range(TASKS)), batch=TASKS // len(nodes))
        wait_all_ended(http, "capped", TASKS, timeout=120)
        tasks = [http.get(f"/v1/tasks/{t['id']}").json() for t in list_tasks(http, "capped")]

    assert {t["status"] for t in tasks} == {"Succeeded"}
    attempts = [a for t in tasks for a in t["attempts"]]
    assert len(attempts) == TASKS
    assert most_at_once(attempts) == LIMIT
    assert len({t["node"] for t in tasks}) > 1  # implied by reaching 3 with 2 per node
