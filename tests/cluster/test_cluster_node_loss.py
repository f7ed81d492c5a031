"""A node killed with SIGKILL mid-run loses nothing: its leases expire, the survivors hand its
tasks back (NodeLost → Retrying) and run them; every task ends Succeeded, at least once."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cluster.cluster import (
    Cluster,
    counts,
    effect_counts,
    list_tasks,
    submit_spread,
    wait_all_ended,
)
from tests.e2e.harness import deploy

TASKS = 3_000
KILL_AFTER = 600
"""Tasks Succeeded before the kill: the cluster is well into the run, most of it still queued."""

NAP = """
import os, random, time

_out = None
_pid = None


def handler(event, context):
    global _out, _pid
    if _pid != os.getpid():
        _out = os.open(os.environ["EFFECTS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        _pid = os.getpid()
    time.sleep(random.uniform(0.02, 0.05))
    # the effect lands before the outcome is reported: a kill in between repeats it
    os.write(_out, f"{context.task_id} {context.attempt}\\n".encode())
"""


def lost_to(task: dict[str, Any], node: str) -> bool:
    """True when one of the task's attempts was handed back because `node` was lost."""
    for event in task["events"]:
        detail = event["detail"] or {}
        error = detail.get("error") or {}
        if (
            event["status"] == "Retrying"
            and error.get("type") == "NodeLost"
            and detail.get("lost_node") == node
        ):
            return True
    return False


@pytest.mark.timeout(300)
def test_a_node_killed_mid_run_loses_no_task(cluster: Cluster, tmp_path: Path) -> None:
    effects = tmp_path / "effects.log"
    (first,) = cluster.add()
    with httpx.Client(base_url=first.url, timeout=60) as http:
        deploy(
            http,
            "nap",
            NAP,
            max_instances=4,
            env={"EFFECTS": str(effects)},
            **{"async": {"max_retries": 3, "retry_backoff": {"base_s": 0.05}}},
        )
        nodes = [first, *cluster.add(2)]
        victim = nodes[2]
        ids = submit_spread(nodes, "nap", list(range(TASKS)))
        deadline = time.monotonic() + 120
        while counts(http, "nap")["Succeeded"] < KILL_AFTER and time.monotonic() < deadline:
            time.sleep(0.05)
        victim.kill()
        wait_all_ended(http, "nap", TASKS, timeout=240)
        tasks = list_tasks(http, "nap")
        retried = {
            t["id"]: http.get(f"/v1/tasks/{t['id']}").json() for t in tasks if t["attempt"] > 1
        }

    assert len(tasks) == TASKS and {t["id"] for t in tasks} == set(ids), "no task lost"
    assert {t["status"] for t in tasks} == {"Succeeded"}
    assert retried, f"{victim.name} was killed with attempts in flight"
    assert [i for i, t in retried.items() if not lost_to(t, victim.name)] == []
    ran = effect_counts(effects.read_text().splitlines())
    assert set(ran) == set(ids), "every task's effect happened at least once"
    twice = {task_id for task_id, n in ran.items() if n > 1}
    assert twice <= set(retried), "only attempts cut by the kill ran again"
    survivors = {t["node"] for t in tasks if t["id"] in retried}
    assert victim.name not in survivors
