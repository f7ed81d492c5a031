"""Node roles: the settings accept them, an `api` node refuses SQLite, and each role starts the
services `asyncfn.roles` names (no process, no database: the node is only built)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from asyncfn.node import Node
from asyncfn.roles import Role
from asyncfn.settings import Settings

PG = "postgresql://postgres@127.0.0.1:5432/unused"
WORKER_ONLY = {
    "janitor",
    "scheduler",
    "schedules",
    "dispatcher",
    "scaling",
    "deliverer",
    "leases",
    "triggers",
}


def services(role: Role, tmp_path: Path) -> set[str]:
    node = Node(Settings(role=role, store=PG, data_dir=tmp_path))
    return {service.name for service in node._services}


def test_role_defaults_to_all_and_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().role == "all"
    monkeypatch.setenv("ASYNCFN_ROLE", "worker")
    monkeypatch.setenv("ASYNCFN_API_URL", "http://api.internal:8400")
    settings = Settings()
    assert (settings.role, settings.api_url) == ("worker", "http://api.internal:8400")


def test_an_api_node_refuses_sqlite(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="role api needs a PostgreSQL store"):
        Settings(role="api", data_dir=tmp_path)
    with pytest.raises(ValidationError, match="role api needs a PostgreSQL store"):
        Settings(role="api", store=f"sqlite:///{tmp_path}/x.db")
    assert Settings(role="worker", data_dir=tmp_path).role == "worker"


def test_an_api_node_starts_no_service_that_works_on_tasks(tmp_path: Path) -> None:
    api = services("api", tmp_path)
    assert api.isdisjoint(WORKER_ONLY)
    assert {"catalog", "keys", "tokens", "flow", "control", "reporter"} <= api


def test_worker_and_all_nodes_start_every_service(tmp_path: Path) -> None:
    assert services("worker", tmp_path) == services("all", tmp_path)
    assert services("all", tmp_path) >= WORKER_ONLY


def test_a_worker_without_api_url_gives_handlers_no_client(tmp_path: Path) -> None:
    worker = Node(Settings(role="worker", store=PG, data_dir=tmp_path))
    assert worker.api_url is None
    given = Node(Settings(role="worker", store=PG, data_dir=tmp_path, api_url="http://a:1"))
    assert given.api_url == "http://a:1"
