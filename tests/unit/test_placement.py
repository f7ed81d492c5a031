"""Placement labels: matching a function's `requires` against node labels, parsing labels from
flags and variables, validating keys and values, and the stats' `placement` answer."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from asyncfn import cli, node
from asyncfn.api.schemas import FunctionIn
from asyncfn.domain.models import FunctionSpec
from asyncfn.domain.placement import NodeRecord, check_labels, parse_labels, placement, satisfies
from asyncfn.settings import Settings
from tests.unit.fakeapi import FakeApi

runner = CliRunner()


@pytest.mark.parametrize(
    ("labels", "requires", "expected"),
    [
        ({}, {}, True),
        ({"gpu": "1"}, {}, True),
        ({"gpu": "1", "mem": "high"}, {"gpu": "1"}, True),
        ({"gpu": "1"}, {"gpu": "1", "mem": "high"}, False),
        ({}, {"gpu": "1"}, False),
        ({"gpu": "2"}, {"gpu": "1"}, False),
        ({"gpu": ""}, {"gpu": ""}, True),
    ],
)
def test_requires_must_be_a_subset_of_the_labels(
    labels: dict[str, str], requires: dict[str, str], expected: bool
) -> None:
    assert satisfies(labels, requires) is expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("gpu=1,mem=high", {"gpu": "1", "mem": "high"}),
        (" gpu = 1 , ", {"gpu": "1"}),
        ('{"gpu": "1"}', {"gpu": "1"}),
        (["gpu=1", "zone=eu-1"], {"gpu": "1", "zone": "eu-1"}),
        ("", {}),
        ({"a": "b"}, {"a": "b"}),
    ],
)
def test_labels_parse_from_pairs_json_or_flag_lists(given: object, expected: Any) -> None:
    assert parse_labels(given) == expected


def test_a_label_without_equals_is_refused() -> None:
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_labels("gpu")


@pytest.mark.parametrize(
    "bad", [{"": "1"}, {"a b": "1"}, {"-gpu": "1"}, {"gpu": "x y"}, {"k": "v" * 129}]
)
def test_bad_label_keys_and_values_are_refused(bad: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        check_labels(bad)


def test_settings_read_labels_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASYNCFN_LABELS", "gpu=1,mem=high")
    assert Settings().labels == {"gpu": "1", "mem": "high"}
    monkeypatch.setenv("ASYNCFN_LABELS", '{"zone": "eu"}')
    assert Settings().labels == {"zone": "eu"}
    assert Settings(labels=["gpu=1"]).labels == {"gpu": "1"}
    with pytest.raises(ValidationError):
        Settings(labels=["bad key=1"])


def test_function_in_validates_requires_and_the_spec_keeps_it() -> None:
    spec = FunctionIn(handler="main:handler", requires={"gpu": "1"}).to_spec("f")
    assert spec.requires == {"gpu": "1"}
    assert FunctionSpec.from_config(spec.to_config()) == spec
    assert FunctionSpec.from_config({"name": "old"}).requires == {}  # configs before labels
    with pytest.raises(ValidationError, match="requires"):
        FunctionIn(handler="main:handler", requires={"gpu!": "1"})


def test_placement_lists_live_matching_nodes_that_run_tasks() -> None:
    nodes = [
        NodeRecord("w2", "worker", {"gpu": "1"}),
        NodeRecord("w1", "all", {"gpu": "1", "mem": "high"}),
        NodeRecord("api", "api", {"gpu": "1"}),  # runs no task
        NodeRecord("plain", "worker", {}),
    ]
    assert placement({"gpu": "1"}, nodes) == {
        "requires": {"gpu": "1"},
        "placeable": True,
        "nodes": ["w1", "w2"],
    }
    assert placement({"gpu": "2"}, nodes)["placeable"] is False
    assert placement({}, nodes)["nodes"] == ["plain", "w1", "w2"]


def test_serve_takes_repeated_labels(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[Settings] = []
    monkeypatch.setattr(node, "serve", started.append)
    result = runner.invoke(cli.app, ["serve", "--label", "gpu=1", "--label", "mem=high"])
    assert result.exit_code == 0, result.output
    assert started[0].labels == {"gpu": "1", "mem": "high"}
    refused = runner.invoke(cli.app, ["serve", "--label", "gpu"])
    assert refused.exit_code == 2
    assert "invalid settings" in refused.stderr


def test_deploy_sends_requires_from_repeated_flags(api: FakeApi) -> None:
    args = ["deploy", "tc", "--command", "true", "--require", "gpu=1", "--require", "mem=high"]
    result = runner.invoke(cli.app, ["--url", api.url, *args])
    assert result.exit_code == 0, result.output
    assert api.requests("PUT", "/v1/functions/tc")[0].json()["requires"] == {
        "gpu": "1",
        "mem": "high",
    }
