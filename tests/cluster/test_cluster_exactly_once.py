"""Three nodes on one database share 10,000 tasks: each runs exactly once when nothing fails,
and every node runs a share of them."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.cluster.cluster import (
    Cluster,
    effect_counts,
    list_tasks,
    submit_spread,
    wait_all_ended,
)
from tests.e2e.harness import deploy

TASKS = 10_000

RECORD = """
import os

_out = None
_pid = None


def handler(event, context):
    # one O_APPEND descriptor per instance process (instances are forked from a parent that
    # imported this module, so it must not be opened at import)
    global _out, _pid
    if _pid != os.getpid():
        _out = os.open(os.environ["EFFECTS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        _pid = os.getpid()
    os.write(_out, f"{context.task_id} {context.attempt}\\n".encode())
"""


@pytest.mark.timeout(300)
def test_ten_thousand_tasks_on_three_nodes_run_exactly_once(
    cluster: Cluster, tmp_path: Path
) -> None:
    effects = tmp_path / "effects.log"
    (first,) = cluster.add()
    with httpx.Client(base_url=first.url, timeout=60) as http:
        deploy(http, "record", RECORD, max_instances=4, env={"EFFECTS": str(effects)})
        # started after the deploy, so their catalogs hold the function from the start
        nodes = [first, *cluster.add(2)]
        ids = submit_spread(nodes, "record", list(range(TASKS)))
        assert len(set(ids)) == TASKS
        wait_all_ended(http, "record", TASKS, timeout=240)
        tasks = list_tasks(http, "record")

    assert len(tasks) == TASKS
    assert {t["status"] for t in tasks} == {"Succeeded"}
    assert {t["attempt"] for t in tasks} == {1}
    ran = effect_counts(effects.read_text().splitlines())
    assert set(ran) == set(ids), "every task's effect, and no other"
    assert [t for t, n in ran.items() if n != 1] == [], "no task ran twice"
    shares = {node.name: 0 for node in nodes}
    for task in tasks:
        shares[task["node"]] += 1
    assert all(share > 0 for share in shares.values()), shares
