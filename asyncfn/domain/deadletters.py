"""Dead letters: which ended tasks a function's `async.on_dead_letter` keeps (Failed or Expired,
so no retry is left), the destination it may name, the list entry and its page cursor."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from asyncfn.domain import limits
from asyncfn.domain.errors import Conflict, Malformed
from asyncfn.domain.models import AsyncPolicy, Destination
from asyncfn.domain.states import TaskStatus

DEAD_LETTER_STATUSES = (TaskStatus.FAILED, TaskStatus.EXPIRED)
"""The endings that make a dead letter: every attempt allowed was used (or the error was not
retryable), or the task waited past its max event age. Stopped and Invalid never do."""


def is_dead_letter(policy: AsyncPolicy, status: TaskStatus) -> bool:
    """Whether a task of a function with `policy` that ended in `status` is a dead letter."""
    return bool(policy.on_dead_letter) and status in DEAD_LETTER_STATUSES


def dead_letter_destination(policy: AsyncPolicy) -> Destination | None:
    """The destination `async.on_dead_letter` names (http or function), marked `dead_letter`
    so its deliveries say so; None for `{"type": "list"}` or no dead letters."""
    config = policy.on_dead_letter
    if not config or config.get("type") == "list":
        return None
    found = Destination.from_config(config, DEAD_LETTER_STATUSES)
    return replace(found, statuses=DEAD_LETTER_STATUSES, dead_letter=True)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One entry of `GET /v1/dead-letters`: a task that ended for good, and its rerun once one
    was made from the entry."""

    row: int
    task_id: str
    function: str
    status: TaskStatus
    error: dict[str, Any] | None
    attempts: int
    at: float
    rerun_as: str | None = None
    rerun_at: float | None = None

    @property
    def cursor(self) -> DeadLetterCursor:
        return DeadLetterCursor(self.at, self.row)


@dataclass(frozen=True, slots=True)
class DeadLetterCursor:
    """Where a page of dead letters (newest first: by `at`, then task row) goes on from."""

    at: float
    row: int

    def encode(self) -> str:
        return f"{self.at!r}~{self.row}"

    @classmethod
    def decode(cls, text: str) -> DeadLetterCursor:
        """Malformed (naming `cursor`) for anything that is no `next_cursor`."""
        at, sep, row = text.partition("~")
        try:
            if sep and row.isascii() and row.isdigit() and int(row) <= limits.SEQ_MAX:
                parsed = cls(float(at), int(row))
                if parsed.at == parsed.at and abs(parsed.at) != float("inf"):
                    return parsed
        except ValueError:
            pass
        raise Malformed("cursor is the next_cursor of a previous page", field="cursor")


class AlreadyRerun(Conflict):
    """A dead letter rerun a second time: its first rerun is named (409)."""

    code = "already_rerun"

    def __init__(self, task_id: str, rerun_as: str) -> None:
        super().__init__(
            f"dead letter {task_id!r} was already rerun as task {rerun_as!r}",
            task_id=task_id,
            rerun_as=rerun_as,
        )
