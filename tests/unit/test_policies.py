"""Outcome → next status, and retry backoff."""

import random

import pytest

from asyncfn.domain.models import RetryBackoff
from asyncfn.domain.outcomes import (
    InstanceExited,
    NodeLost,
    OutOfMemory,
    Raised,
    Stopped,
    Succeeded,
    TimedOut,
    error_of,
)
from asyncfn.domain.policies import backoff_s, next_status
from asyncfn.domain.states import TaskStatus

BACKOFF = RetryBackoff(base_s=1.0, max_s=10.0)
FAILURES = [
    Raised("ValueError", "bad", "tb", 1.0),
    TimedOut(5, 5000.0),
    InstanceExited(3, None, "boom", 1.0),
    OutOfMemory(128, 300.0, 1.0),
    NodeLost("n1", "node restarted"),
]


def test_success_is_terminal_whatever_the_attempt() -> None:
    assert next_status(Succeeded(1, 1.0), 1, 4, BACKOFF).status is TaskStatus.SUCCEEDED


@pytest.mark.parametrize("outcome", FAILURES)
def test_failure_with_attempts_left_retries_later(outcome: object) -> None:
    nxt = next_status(outcome, 1, 4, BACKOFF, random.Random(1))  # type: ignore[arg-type]
    assert nxt.status is TaskStatus.RETRYING
    assert nxt.retry_in_s is not None and 0.5 <= nxt.retry_in_s <= 1.0


@pytest.mark.parametrize("outcome", FAILURES)
def test_failure_of_the_last_attempt_fails(outcome: object) -> None:
    assert next_status(outcome, 4, 4, BACKOFF).status is TaskStatus.FAILED  # type: ignore[arg-type]


def test_import_errors_are_not_retried() -> None:
    outcome = Raised("HandlerImportError", "no module", None, 0.0, retryable=False)
    assert next_status(outcome, 1, 4, BACKOFF).status is TaskStatus.FAILED


def test_stopped_attempt_ends_stopped() -> None:
    assert next_status(Stopped(1.0), 1, 4, BACKOFF).status is TaskStatus.STOPPED


def test_backoff_doubles_and_is_capped() -> None:
    rng = random.Random(7)
    for attempt, ceiling in [(1, 1), (2, 2), (3, 4), (4, 8), (5, 10), (8, 10)]:
        delay = backoff_s(BACKOFF, attempt, rng)
        assert ceiling / 2 <= delay <= ceiling


def test_error_json_names_the_platform_error_type() -> None:
    types = [error_of(o)["type"] for o in FAILURES]  # type: ignore[index]
    assert types == ["ValueError", "TimeoutError", "InstanceExited", "OutOfMemory", "NodeLost"]
    assert error_of(Succeeded(None, 1.0)) is None
