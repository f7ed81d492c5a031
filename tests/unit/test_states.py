"""The state machine of DESIGN.md, as `domain.states` encodes it."""

from pathlib import Path

from asyncfn.domain.states import (
    TERMINAL,
    TRANSITIONS,
    TaskStatus,
    can_move,
    sources_of,
    states_markdown,
)

S = TaskStatus


def test_every_status_has_a_row_in_the_transition_table() -> None:
    assert set(TRANSITIONS) == set(TaskStatus)


def test_terminal_statuses_have_no_way_out() -> None:
    assert {S.SUCCEEDED, S.FAILED, S.STOPPED, S.EXPIRED, S.INVALID} == TERMINAL
    for status in TERMINAL:
        assert TRANSITIONS[status] == frozenset()
        assert status.terminal


def test_design_edges_are_allowed() -> None:
    edges = [
        (S.ENQUEUED, S.RUNNING),
        (S.ENQUEUED, S.STOPPED),
        (S.ENQUEUED, S.EXPIRED),
        (S.ENQUEUED, S.SUSPENDED),
        (S.RUNNING, S.SUCCEEDED),
        (S.RUNNING, S.RETRYING),
        (S.RUNNING, S.FAILED),
        (S.RUNNING, S.SUSPENDED),
        (S.RUNNING, S.STOPPING),
        (S.RETRYING, S.ENQUEUED),
        (S.RETRYING, S.STOPPED),
        (S.SUSPENDED, S.ENQUEUED),
        (S.SUSPENDED, S.RUNNING),
        (S.SUSPENDED, S.STOPPED),
        (S.STOPPING, S.STOPPED),
    ]
    for source, target in edges:
        assert can_move(source, target), (source, target)


def test_edges_outside_the_graph_are_refused() -> None:
    assert not can_move(S.SUCCEEDED, S.RUNNING)
    assert not can_move(S.ENQUEUED, S.SUCCEEDED)
    assert not can_move(S.RETRYING, S.RUNNING)
    assert not can_move(S.STOPPING, S.SUCCEEDED)
    assert not can_move(S.FAILED, S.ENQUEUED)


def test_sources_of_a_target_is_the_guard_of_that_transition() -> None:
    assert sources_of(S.RUNNING) == {S.ENQUEUED, S.SUSPENDED}
    assert sources_of(S.STOPPED) == {S.ENQUEUED, S.RETRYING, S.SUSPENDED, S.STOPPING}
    assert sources_of(S.ENQUEUED) == {S.RETRYING, S.SUSPENDED}
    assert sources_of(S.SUCCEEDED) == {S.RUNNING, S.SUSPENDED}


def test_status_names_match_function_compute() -> None:
    assert [s.value for s in TaskStatus] == [
        "Enqueued",
        "Running",
        "Retrying",
        "Suspended",
        "Stopping",
        "Succeeded",
        "Failed",
        "Stopped",
        "Expired",
        "Invalid",
    ]


def test_docs_states_md_is_generated_from_the_table() -> None:
    path = Path(__file__).parents[2] / "docs" / "states.md"
    assert path.read_text() == states_markdown(), "run `make docs`"
