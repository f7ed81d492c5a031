"""domain.operations: the filter's stored form and which statuses each kind acts on."""

from __future__ import annotations

from asyncfn.domain.operations import ENDED, STOPPABLE, TaskFilter, acted_on
from asyncfn.domain.states import TaskStatus

S = TaskStatus


def test_filter_round_trips_through_its_stored_form() -> None:
    f = TaskFilter(
        function="f",
        statuses=(S.ENQUEUED, S.FAILED),
        created_after=1.5,
        created_before=9.0,
        key="user-1",
        labels=(("source", "s3"), ("type", "put")),
    )
    assert TaskFilter.from_json(f.to_json()) == f
    assert f.to_json()["labels"] == {"source": "s3", "type": "put"}
    assert TaskFilter.from_json({"all": True}) == TaskFilter(everything=True)


def test_only_a_filter_without_any_field_is_empty() -> None:
    assert TaskFilter().empty
    assert not TaskFilter(everything=True).empty
    assert not TaskFilter(key="k").empty
    assert TaskFilter().to_json() == {}


def test_each_kind_acts_on_its_statuses_narrowed_by_the_filter() -> None:
    assert S.STOPPING not in STOPPABLE and S.RUNNING in STOPPABLE
    assert set(ENDED) == {S.SUCCEEDED, S.FAILED, S.STOPPED, S.EXPIRED, S.INVALID}
    assert acted_on("stop", ()) == STOPPABLE
    assert acted_on("stop", (S.ENQUEUED, S.FAILED)) == (S.ENQUEUED,)
    assert acted_on("rerun", (S.ENQUEUED,)) == ()
    assert acted_on("purge", (S.FAILED,)) == (S.FAILED,)
