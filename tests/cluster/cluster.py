"""Several real node processes on one PostgreSQL database, and helpers that drive them through
the HTTP API: batch submission spread over the nodes, waiting until a function's tasks all end,
and reading every task back."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.harness import TERMINAL, Server, free_port

BATCH = 1_000


class Cluster:
    """Nodes `node-1`, `node-2`, … on one store, each with its own port and data dir; a short
    lease so a killed node's tasks are found lost within seconds."""

    def __init__(self, root: Path, store_url: str, *, lease_s: float = 3.0) -> None:
        self.root = root
        self.env = {"ASYNCFN_STORE": store_url, "ASYNCFN_LEASE_S": str(lease_s)}
        self.nodes: list[Server] = []

    def add(self, count: int = 1, **env: str) -> list[Server]:
        """Start `count` more nodes (one after another: each applies or checks the schema)."""
        added = []
        for _ in range(count):
            name = f"node-{len(self.nodes) + 1}"
            node = Server(self.root / name, free_port(), {**self.env, **env}, name=name)
            self.nodes.append(node)
            added.append(node.start())
        return added

    def stop(self) -> None:
        """SIGTERM every node still running; each must exit within the harness's grace."""
        late = []
        for node in self.nodes:
            try:
                node.stop()
            except subprocess.TimeoutExpired:
                late.append(node.name)
        assert not late, f"nodes did not stop on SIGTERM: {late}"

    def logs(self) -> str:
        return "\n".join(f"--- {n.name}\n{n.log()[-4000:]}" for n in self.nodes)


def submit_spread(
    nodes: Sequence[Server], function: str, payloads: Sequence[Any], *, batch: int = BATCH
) -> list[str]:
    """Submit `payloads` in batches of `batch`, round-robin over `nodes`; the ids in order."""
    clients = [httpx.Client(base_url=n.url, timeout=60) for n in nodes]
    try:
        ids: list[str] = []
        for i in range(0, len(payloads), batch):
            http = clients[(i // batch) % len(clients)]
            resp = http.post(
                f"/v1/functions/{function}/invocations:batch", json=list(payloads[i : i + batch])
            )
            assert resp.status_code == 202, resp.text
            ids += [item["task_id"] for item in resp.json()["items"]]
        return ids
    finally:
        for http in clients:
            http.close()


def counts(http: httpx.Client, function: str) -> dict[str, int]:
    """Tasks of `function` in each status, cluster-wide (from the store)."""
    resp = http.get(f"/v1/functions/{function}/stats")
    assert resp.status_code == 200, resp.text
    return dict(resp.json()["counts"])


def wait_all_ended(http: httpx.Client, function: str, total: int, timeout: float) -> None:
    """Poll until `total` tasks of `function` are terminal (a generous bound, never a check of
    speed: the assertion message says what was left)."""
    deadline = time.monotonic() + timeout
    while True:
        now = counts(http, function)
        if sum(now[s] for s in TERMINAL) >= total:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{function}: not all {total} tasks ended: {now}")
        time.sleep(0.25)


def list_tasks(http: httpx.Client, function: str) -> list[dict[str, Any]]:
    """Every task of `function` (summaries: status, attempt, node, …), paged 1,000 at a time."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"function": function, "limit": 1000}
        if cursor is not None:
            params["cursor"] = cursor
        page = http.get("/v1/tasks", params=params).json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def effect_counts(lines: Iterable[str]) -> dict[str, int]:
    """How many times each task id appears first on a line of a side-effect file."""
    seen: dict[str, int] = {}
    for line in lines:
        if line.strip():
            task_id = line.split()[0]
            seen[task_id] = seen.get(task_id, 0) + 1
    return seen
