"""Policy as pure functions: the next status for an attempt's outcome, retry backoff, and which
destinations a finished task is delivered to (with their retry backoff and chain loops)."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass

from asyncfn.domain import limits
from asyncfn.domain.deadletters import dead_letter_destination
from asyncfn.domain.models import AsyncPolicy, Destination, RetryBackoff
from asyncfn.domain.outcomes import (
    InstanceExited,
    NodeLost,
    Outcome,
    OutOfMemory,
    Raised,
    Stopped,
    Succeeded,
    TimedOut,
)
from asyncfn.domain.states import TaskStatus


@dataclass(frozen=True, slots=True)
class Next:
    """Where a task goes after an attempt; `retry_in_s` is set for Retrying."""

    status: TaskStatus
    retry_in_s: float | None = None


def backoff_s(backoff: RetryBackoff, attempt: int, rng: random.Random | None = None) -> float:
    """Delay before the attempt after `attempt`: half fixed, half jitter, of base·2^(attempt-1)."""
    ceiling = min(backoff.max_s, backoff.base_s * 2.0 ** max(attempt - 1, 0))
    jitter = rng.random() if rng is not None else random.random()
    return ceiling / 2 + jitter * ceiling / 2


def next_status(
    outcome: Outcome,
    attempt: int,
    max_attempts: int,
    backoff: RetryBackoff,
    rng: random.Random | None = None,
) -> Next:
    """The one place an outcome becomes a transition."""
    attempts_left = attempt < max_attempts
    match outcome:
        case Succeeded():
            return Next(TaskStatus.SUCCEEDED)
        case Stopped():
            return Next(TaskStatus.STOPPED)
        case Raised(retryable=False):
            return Next(TaskStatus.FAILED)
        case Raised() | TimedOut() | InstanceExited() | OutOfMemory() | NodeLost() if attempts_left:
            return Next(TaskStatus.RETRYING, backoff_s(backoff, attempt, rng))
        case _:
            return Next(TaskStatus.FAILED)


ON_SUCCESS_STATUSES = (TaskStatus.SUCCEEDED,)
ON_FAILURE_STATUSES = (TaskStatus.FAILED, TaskStatus.EXPIRED)
DESTINATION_KEYS = {"on_success": ON_SUCCESS_STATUSES, "on_failure": ON_FAILURE_STATUSES}
"""Each destination key of `async` with the statuses it is for unless it names its own."""


def destinations(policy: AsyncPolicy) -> dict[str, Destination]:
    """The policy's configured destinations by key (`on_success`, `on_failure`, and
    `on_dead_letter` when it names an http or function destination)."""
    configs = {"on_success": policy.on_success, "on_failure": policy.on_failure}
    found = {
        key: Destination.from_config(config, DESTINATION_KEYS[key])
        for key, config in configs.items()
        if config
    }
    dead_letter = dead_letter_destination(policy)
    if dead_letter is not None:
        found["on_dead_letter"] = dead_letter
    return found


def destinations_for(policy: AsyncPolicy, status: TaskStatus) -> list[Destination]:
    """The destinations a task that ended in `status` is delivered to (none for a status that
    is not terminal)."""
    if not status.terminal:
        return []
    return [d for d in destinations(policy).values() if status in d.statuses]


def delivery_next_at(base_s: float, attempts: int, created_at: float, now: float) -> float | None:
    """When to try a delivery again after its `attempts`-th failed attempt: base·2^(attempts-1)
    later, capped at 10 minutes, while within a day of its creation; None → dead."""
    deadline = created_at + limits.DELIVERY_WINDOW_S
    if now >= deadline:
        return None
    delay = min(limits.DELIVERY_BACKOFF_MAX_S, base_s * 2.0 ** max(attempts - 1, 0))
    return min(now + delay, deadline)


def chain_loop(
    name: str, policy: AsyncPolicy, chains: Mapping[str, AsyncPolicy]
) -> tuple[str, str] | None:
    """Whether giving function `name` the `policy` lets a task chain back to it through the
    function destinations of the other functions' `chains` (their current policies). Answers
    the key of the destination that starts the loop and the loop, e.g. ("on_success",
    "a → b → a"); None when there is none."""
    for key, first in destinations(policy).items():
        if first.type != "function" or first.function is None:
            continue
        stack = [[name, first.function]]
        seen: set[str] = set()
        while stack:
            path = stack.pop()
            here = path[-1]
            if here == name:
                return key, " → ".join(path)
            if here in seen or here not in chains:
                continue
            seen.add(here)
            stack.extend([*path, target] for target in _chained(chains[here]))
    return None


def _chained(policy: AsyncPolicy) -> list[str]:
    """The functions a policy's function destinations name."""
    return [
        d.function
        for d in destinations(policy).values()
        if d.type == "function" and d.function is not None
    ]
