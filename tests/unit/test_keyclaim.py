"""store.keyclaim's plan: round robin across the first key's values, limits held, a
cancel_newest task ended, one cancel_oldest preemption per value, and the candidates read."""

from __future__ import annotations

from asyncfn.domain.models import ConcurrencyLimit
from asyncfn.store.keyclaim import Keyed, Running, fetch_sizes, plan

A = ConcurrencyLimit("/c", 2)


def tasks(value: str, count: int, start: int = 0) -> list[Keyed]:
    return [Keyed(start + i, f"{value}{i}", (value, None, None)) for i in range(count)]


def test_each_round_takes_one_task_per_value() -> None:
    made = plan([A], ["a", "b", "c"], {"a": tasks("a", 3), "b": tasks("b", 1, 10)}, [], 4)
    assert [t.id for t in made.take] == ["a0", "b0", "a1"]
    assert made.last_served == "a" and made.held  # a2 is held by the limit


def test_a_value_at_its_limit_is_held_and_served_last_moves_on() -> None:
    running = [Running(90, "r", ("a", None, None), 1.0), Running(91, "s", ("a", None, None), 2.0)]
    made = plan([A], ["a", "b"], {"a": tasks("a", 2), "b": tasks("b", 1, 10)}, running, 5)
    assert [t.id for t in made.take] == ["b0"] and made.held and made.last_served == "b"


def test_cancel_newest_ends_every_task_at_the_limit() -> None:
    newest = ConcurrencyLimit("/c", 1, "cancel_newest")
    made = plan([newest], ["a"], {"a": tasks("a", 3)}, [], 5)
    assert [t.id for t in made.take] == ["a0"]
    assert [s.task.id for s in made.stop] == ["a1", "a2"]
    assert made.stop[0].detail["strategy"] == "cancel_newest"


def test_cancel_oldest_preempts_one_running_task_per_value() -> None:
    oldest = ConcurrencyLimit("/c", 2, "cancel_oldest")
    running = [
        Running(91, "young", ("a", None, None), 5.0),
        Running(90, "old", ("a", None, None), 1.0),
    ]
    made = plan([oldest], ["a"], {"a": tasks("a", 3)}, running, 5)
    assert made.take == [] and made.held
    assert [(p.task.id, p.detail["replaced_by"]) for p in made.preempt] == [("old", "a0")]

    stopping = [running[0], Running(90, "old", ("a", None, None), 1.0, stopping=True)]
    assert plan([oldest], ["a"], {"a": tasks("a", 1)}, stopping, 5).preempt == []


def test_fetch_sizes_read_one_more_than_the_room() -> None:
    running = [Running(90, "r", ("a", None, None))]
    sizes = fetch_sizes([A], ["a", "b", None], running, 8)
    assert sizes == {"a": 2, "b": 3, None: 9}
    full = [*running, Running(91, "s", ("a", None, None))]
    assert "a" not in fetch_sizes([A], ["a"], full, 8)
