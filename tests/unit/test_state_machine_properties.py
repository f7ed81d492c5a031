"""Properties of the transition table (`asyncfn.domain.states`), checked by Hypothesis over
random walks from a new task's status and, as a backstop, over the whole graph.

- the table is well formed: every status has an entry and every target is a status;
- a terminal status is final: no walk reaches one and then moves on;
- no task is unfinishable: from every status a walk can reach, some terminal status is reachable;
- every status is reachable from Enqueued (none is dead code in the table).
"""

from __future__ import annotations

from collections import deque
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from asyncfn.domain.states import TERMINAL, TRANSITIONS, TaskStatus, can_move, sources_of

S = TaskStatus
INITIAL = S.ENQUEUED
"""What `submit_many` and `rerun` create every task as."""

PROPERTY = settings(max_examples=300, derandomize=True, deadline=None)


def reachable(start: TaskStatus) -> set[TaskStatus]:
    """Every status some sequence of allowed transitions leads to from `start` (itself too)."""
    seen = {start}
    todo = deque([start])
    while todo:
        for target in TRANSITIONS[todo.popleft()]:
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


@st.composite
def walks(draw: st.DrawFn, start: TaskStatus = INITIAL, max_steps: int = 30) -> list[TaskStatus]:
    """A path of allowed transitions from `start`: each step one of the allowed targets, until
    a status with none is reached or the walk is `max_steps` long."""
    path = [start]
    for _ in range(max_steps):
        targets = sorted(TRANSITIONS[path[-1]])
        if not targets:
            break
        path.append(draw(st.sampled_from(targets)))
    return path


def test_the_table_names_every_status_once_and_only_statuses() -> None:
    assert set(TRANSITIONS) == set(TaskStatus)
    for targets in TRANSITIONS.values():
        assert targets <= set(TaskStatus)
    assert {s for s in TaskStatus if s.terminal} == TERMINAL
    assert INITIAL not in TERMINAL


def test_no_status_moves_to_itself() -> None:
    """A repeated status is no transition (an event repeating one is an annotation)."""
    for status, targets in TRANSITIONS.items():
        assert status not in targets, status


@PROPERTY
@given(source=st.sampled_from(list(TaskStatus)), target=st.sampled_from(list(TaskStatus)))
def test_can_move_and_sources_of_read_the_table(source: TaskStatus, target: TaskStatus) -> None:
    assert can_move(source, target) == (target in TRANSITIONS[source])
    assert (source in sources_of(target)) == can_move(source, target)


@PROPERTY
@given(path=walks())
def test_no_walk_from_a_new_task_moves_on_from_a_terminal_status(path: list[TaskStatus]) -> None:
    for before, after in pairwise(path):
        assert can_move(before, after)
        assert before not in TERMINAL, f"{' → '.join(path)} leaves {before} for {after}"
    if path[-1] in TERMINAL:
        assert TRANSITIONS[path[-1]] == frozenset()


@PROPERTY
@given(path=walks())
def test_wherever_a_task_is_it_can_still_end(path: list[TaskStatus]) -> None:
    for status in path:
        if status not in TERMINAL:
            assert reachable(status) & TERMINAL, f"{' → '.join(path)}: {status} cannot end"


def test_every_status_is_reachable_from_a_new_task() -> None:
    assert reachable(INITIAL) == set(TaskStatus)


def test_terminal_statuses_are_exactly_those_that_never_move() -> None:
    for status in TaskStatus:
        assert (TRANSITIONS[status] == frozenset()) == (status in TERMINAL), status
        if status not in TERMINAL:
            assert reachable(status) & TERMINAL, status
