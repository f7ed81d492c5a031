"""The SQLite store's dead letters: the entries that terminal transitions write (through the
outbox's `enqueue`, in their transaction), the newest-first list, and a rerun marked on its
entry in the rerun's own transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from asyncfn.domain import limits
from asyncfn.domain.deadletters import AlreadyRerun, DeadLetter, DeadLetterCursor
from asyncfn.domain.models import Submitted
from asyncfn.domain.states import TaskStatus
from asyncfn.store.sqlite.rows import json_value

Connection = sqlite3.Connection

FIRST_PAGE = DeadLetterCursor(float("inf"), limits.SEQ_MAX)
"""The cursor before every entry."""


def dead_letter_from_row(row: Sequence[Any]) -> DeadLetter:
    """From the 9 columns `list_dead_letters` selects."""
    row_id, task_id, function, status, reason, attempt, at, rerun_as, rerun_at = row
    return DeadLetter(
        row=row_id,
        task_id=task_id,
        function=function,
        status=TaskStatus(status),
        error=json_value(reason),
        attempts=attempt,
        at=float(at),
        rerun_as=rerun_as,
        rerun_at=None if rerun_at is None else float(rerun_at),
    )


def list_params(
    tenant: str, function: str | None, limit: int, after: DeadLetterCursor | None
) -> tuple[str, dict[str, Any]]:
    """The statement name and parameters of a page (one row more than `limit`, to tell
    whether another page follows)."""
    cursor = after or FIRST_PAGE
    params = {"tenant": tenant, "function": function, "at": cursor.at, "row": cursor.row}
    name = "list_dead_letters" if function is None else "list_function_dead_letters"
    return name, {**params, "limit": limit + 1}


def page(
    found: Sequence[Sequence[Any]], limit: int
) -> tuple[list[DeadLetter], DeadLetterCursor | None]:
    entries = [dead_letter_from_row(r) for r in found[:limit]]
    return entries, entries[-1].cursor if len(found) > limit else None


class SqliteDeadLetters:
    """Dead-letter ops over the named statements `q`."""

    def __init__(self, q: Mapping[str, str]) -> None:
        self.q = q

    def record(self, conn: Connection, rows: Sequence[int], now: float) -> None:
        """List `rows` (tasks that just ended Failed or Expired), in the caller's transaction."""
        if rows:
            params = {"rows": orjson.dumps(list(rows)).decode(), "now": now}
            conn.execute(self.q["insert_dead_letters"], params)

    def listed(
        self,
        conn: Connection,
        tenant: str,
        function: str | None,
        limit: int,
        after: DeadLetterCursor | None,
    ) -> tuple[list[DeadLetter], DeadLetterCursor | None]:
        name, params = list_params(tenant, function, limit, after)
        return page(conn.execute(self.q[name], params).fetchall(), limit)

    def rerun(
        self,
        conn: Connection,
        tenant: str,
        task_id: str,
        now: float,
        make: Callable[[Connection], Submitted | None],
    ) -> Submitted | None:
        """`make` the rerun (the control's rerun op) of the dead letter `task_id` and mark its
        entry with it. None when the task is no dead letter; AlreadyRerun when it was rerun."""
        key = {"tenant": tenant, "id": task_id}
        found = conn.execute(self.q["dead_letter_of_task"], key).fetchone()
        if found is None:
            return None
        row, rerun_as = found
        if rerun_as is not None:
            raise AlreadyRerun(task_id, rerun_as)
        submitted = make(conn)
        if submitted is not None and submitted.created:
            mark = {"row": row, "rerun_as": submitted.task_id, "now": now}
            conn.execute(self.q["mark_dead_letter_rerun"], mark)
        return submitted
