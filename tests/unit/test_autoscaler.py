"""The autoscaler's decisions: targets from demand, clamping, the CPU hold, a fair fit into the
node's capacity, and a log entry only when a pool's target changes."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from asyncfn.domain.models import FunctionSpec
from asyncfn.runtime.autoscaler import (
    Autoscaler,
    Demand,
    FitRequest,
    cpu_hold,
    fit_into_capacity,
    wanted_instances,
)
from asyncfn.runtime.capacity import NodeCapacity, default_memory_budget_mb
from asyncfn.runtime.pool import InstancePool


class Quiet:
    def on_started(self, *args: object) -> None: ...
    def on_log(self, *args: object) -> None: ...
    def on_progress(self, *args: object) -> None: ...
    def on_checkpoint(self, *args: object) -> None: ...


def pool(
    tmp_path: Path, name: str, capacity: NodeCapacity | None = None, **spec: int
) -> InstancePool:
    """A pool that is never started: the autoscaler only reads its spec, target and load."""
    return InstancePool(
        FunctionSpec(name=name, command=("true",), runtime="command", **spec),  # type: ignore[arg-type]
        None,
        Quiet(),
        scratch_dir=tmp_path,
        base_env={},
        capacity=capacity,
    )


def test_target_is_the_work_over_instance_concurrency_rounded_up() -> None:
    spec = FunctionSpec(name="f", instance_concurrency=4, max_instances=10)
    assert wanted_instances(Demand(queued=0, running=0), spec) == 0
    assert wanted_instances(Demand(queued=1, running=0), spec) == 1
    assert wanted_instances(Demand(queued=5, running=3), spec) == 2
    assert wanted_instances(Demand(queued=6, running=3), spec) == 3


def test_target_is_clamped_to_min_and_max_instances() -> None:
    spec = FunctionSpec(name="f", min_instances=2, max_instances=5)
    assert wanted_instances(Demand(0, 0), spec) == 2
    assert wanted_instances(Demand(100, 7), spec) == 5


def test_growth_holds_only_when_the_cpu_is_saturated_and_the_pool_all_busy() -> None:
    assert cpu_hold(wanted=6, current=3, node_cpu=99.0, busy=1.0) == 3
    assert cpu_hold(wanted=6, current=3, node_cpu=99.0, busy=0.5) is None
    assert cpu_hold(wanted=6, current=3, node_cpu=60.0, busy=1.0) is None
    assert cpu_hold(wanted=2, current=3, node_cpu=99.0, busy=1.0) is None  # shrinking is fine


def test_fit_gives_every_pool_its_min_then_shares_the_rest_max_min_fairly() -> None:
    requests = {
        "a": FitRequest(min_instances=0, wanted=10, memory_mb=64),
        "b": FitRequest(min_instances=2, wanted=10, memory_mb=64),
        "c": FitRequest(min_instances=0, wanted=1, memory_mb=64),
    }
    # 8 instances: b's floor (2), then one each until c is satisfied, then a and b alternate.
    assert fit_into_capacity(requests, max_instances=8, memory_budget_mb=10_000) == {
        "a": 3,
        "b": 4,
        "c": 1,
    }


def test_fit_leaves_targets_alone_when_they_fit() -> None:
    requests = {"a": FitRequest(0, 3, 64), "b": FitRequest(1, 2, 64)}
    assert fit_into_capacity(requests, 10, 10_000) == {"a": 3, "b": 2}


def test_fit_respects_the_memory_budget_by_instance_size() -> None:
    requests = {"big": FitRequest(0, 4, 1_000), "small": FitRequest(0, 4, 100)}
    # 2,500 MB: big gets 2 (2,000 MB); the rest (500 MB) goes to small, one at a time.
    assert fit_into_capacity(requests, 100, 2_500) == {"big": 2, "small": 4}


def test_fit_grants_floors_even_beyond_the_node() -> None:
    requests = {"a": FitRequest(3, 5, 64), "b": FitRequest(3, 3, 64)}
    assert fit_into_capacity(requests, 4, 10_000) == {"a": 3, "b": 3}


def test_decide_changes_targets_fairly_within_the_node(tmp_path: Path) -> None:
    capacity = NodeCapacity(max_instances=4, memory_budget_mb=10_000)
    pools = {
        "a": pool(tmp_path, "a", capacity, max_instances=4),
        "b": pool(tmp_path, "b", capacity, max_instances=4),
    }
    scaler = Autoscaler(capacity, cpu_percent=lambda: 10.0)
    decisions = scaler.decide(pools, {"a": Demand(20, 0), "b": Demand(1, 0)}, now=1.0)
    assert [(d.function, d.before, d.after) for d in decisions] == [("a", 0, 3), ("b", 0, 1)]
    assert "node capacity shared" in decisions[0].reason


async def test_decisions_are_logged_and_kept_only_when_the_target_changes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pools = {"a": pool(tmp_path, "a", max_instances=4)}
    scaler = Autoscaler(cpu_percent=lambda: 10.0)
    caplog.set_level(logging.INFO, logger="asyncfn.autoscaler")

    (first,) = scaler.decide(pools, {"a": Demand(2, 0)}, now=1.0)
    assert (first.before, first.after) == (0, 2)
    pools["a"].scale_to(first.after, first.reason, at=first.at)
    assert scaler.decide(pools, {"a": Demand(2, 0)}, now=2.0) == []  # unchanged: no entry
    (second,) = scaler.decide(pools, {"a": Demand(0, 0)}, now=3.0)
    assert (second.before, second.after) == (2, 0)

    pools["a"].scale_to(second.after, second.reason, at=second.at)
    await pools["a"].stop(grace_s=0.5)

    assert scaler.decisions("a") == (first, second)
    assert pools["a"].stats().decisions == (first, second)
    lines = [r.getMessage() for r in caplog.records if r.name == "asyncfn.autoscaler"]
    assert len(lines) == 2 and lines[0].startswith("scale a: 0→2 (")


def test_decision_history_keeps_the_last_twenty(tmp_path: Path) -> None:
    pools = {"a": pool(tmp_path, "a", max_instances=4)}
    scaler = Autoscaler(cpu_percent=lambda: 10.0)
    for tick in range(50):  # not applied: every odd tick decides 0→1 again
        scaler.decide(pools, {"a": Demand(tick % 2, 0)}, now=float(tick))
    history = scaler.decisions("a")
    assert len(history) == 20 and history[0].at == 11.0 and history[-1].at == 49.0


def test_a_pool_without_demand_goes_back_to_its_min(tmp_path: Path) -> None:
    pools = {"a": pool(tmp_path, "a", min_instances=1, max_instances=4)}
    scaler = Autoscaler(cpu_percent=lambda: 10.0)
    assert scaler.decide(pools, {}, now=1.0) == []  # target is already min_instances


def test_the_default_memory_budget_is_most_of_the_machine() -> None:
    budget = default_memory_budget_mb()
    assert budget > 0
    assert NodeCapacity(max_instances=2).memory_budget_mb == budget
