"""Concurrency keys on two real nodes on one PostgreSQL database: a key value's limit holds
across both (checked from the attempts' recorded instance start and finish times), and a
cancel_oldest replacement stops the old task wherever it runs (PostgreSQL only)."""

from __future__ import annotations

import pytest

from tests.e2e import test_e2e_cluster_control as cluster
from tests.e2e.harness import deploy, wait_terminal
from tests.e2e.test_e2e_cluster_control import Nodes
from tests.e2e.test_e2e_flow import most_at_once, spans
from tests.e2e.test_e2e_keys import SLEEPY, submit, wait_status

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(120)]

nodes = cluster.nodes
"""Two nodes on one fresh database (the fixture of the cluster control suite)."""


def test_a_key_limit_holds_across_two_nodes(nodes: Nodes) -> None:
    a, b = nodes
    deploy(a, "keyed", SLEEPY, max_instances=2, concurrency=[{"key": "/c", "limit": 2}])
    deploy(b, "keyed", SLEEPY, max_instances=2, concurrency=[{"key": "/c", "limit": 2}])
    ids = [submit(node, "keyed", "acme", 0.3) for _ in range(4) for node in (a, b)]
    ids += [submit(a, "keyed", "other", 0.3) for _ in range(2)]
    tasks = [wait_terminal(a, task_id, 60) for task_id in ids]
    assert {t["status"] for t in tasks} == {"Succeeded"}
    acme = [t for t in tasks if t["result"] == "acme"]
    assert len(acme) == 8
    assert most_at_once(spans(acme)) <= 2


def test_cancel_oldest_stops_the_old_task_on_either_node(nodes: Nodes) -> None:
    a, b = nodes
    limit = {"key": "/c", "limit": 1, "strategy": "cancel_oldest"}
    deploy(a, "oldest", SLEEPY, max_instances=2, stop_grace_s=1, concurrency=[limit])
    old = submit(a, "oldest", "acme", 60.0)
    wait_status(a, old, "Running")
    new = submit(b, "oldest", "acme", 0.0)
    replaced = wait_terminal(b, old, 30)
    assert replaced["status"] == "Stopped"
    stopping = [e for e in replaced["events"] if e["status"] == "Stopping"]
    assert stopping and stopping[0]["detail"]["replaced_by"] == new
    assert wait_terminal(a, new, 30)["status"] == "Succeeded"
