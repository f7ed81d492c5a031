"""Placement labels across nodes: on two nodes sharing one PostgreSQL store, one started with
--label gpu=1, a function requiring gpu=1 runs only on the labelled node, while a function
without requirements spreads over both."""

from __future__ import annotations

import httpx
import pytest

from tests.cluster.cluster import Cluster, list_tasks, submit_spread, wait_all_ended
from tests.e2e.harness import deploy

TASKS = 20
SLEEP = "import time\n\ndef handler(event, context):\n    time.sleep(0.2)\n"


@pytest.mark.timeout(180)
def test_a_labelled_function_never_runs_on_an_unlabelled_node(cluster: Cluster) -> None:
    (gpu,) = cluster.add(ASYNCFN_LABELS="gpu=1")
    (plain,) = cluster.add()
    with httpx.Client(base_url=plain.url, timeout=60) as http:
        deploy(http, "on-gpu", SLEEP, requires={"gpu": "1"}, max_instances=4)
        deploy(http, "anywhere", SLEEP, max_instances=4)
        placement = http.get("/v1/functions/on-gpu/stats").json()["placement"]
        assert placement == {"requires": {"gpu": "1"}, "placeable": True, "nodes": [gpu.name]}
        nodes = {n["name"]: n["labels"] for n in http.get("/v1/nodes").json()["items"]}
        assert nodes == {gpu.name: {"gpu": "1"}, plain.name: {}}

        # Submitted through both nodes: the unlabelled one accepts but never runs them.
        submit_spread([gpu, plain], "on-gpu", list(range(TASKS)), batch=TASKS // 2)
        submit_spread([gpu, plain], "anywhere", list(range(TASKS)), batch=TASKS // 2)
        wait_all_ended(http, "on-gpu", TASKS, timeout=120)
        wait_all_ended(http, "anywhere", TASKS, timeout=120)
        on_gpu = list_tasks(http, "on-gpu")
        anywhere = list_tasks(http, "anywhere")

    assert {t["status"] for t in on_gpu + anywhere} == {"Succeeded"}, cluster.logs()
    assert len(on_gpu) == len(anywhere) == TASKS
    assert {t["node"] for t in on_gpu} == {gpu.name}
    assert {t["node"] for t in anywhere} == {gpu.name, plain.name}
