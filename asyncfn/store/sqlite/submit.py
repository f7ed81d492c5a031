"""The SQLite store's submission op: new tasks and their Enqueued events, inserted in the
GroupCommitter's transaction (`submit_many`), and several callers' submissions of one function
merged into one insert (`submit_merged`, for `GroupCommitter.run_merged`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from asyncfn.domain.models import Submission, Submitted
from asyncfn.domain.states import TaskStatus
from asyncfn.store.coalesce import Call, merged_calls, split_answers
from asyncfn.store.sqlite.rows import json_text
from asyncfn.store.sqlite.writes import Event, append_events, new_task_ids
from asyncfn.store.taskkeys import KEY_COLUMNS, key_columns

Connection = sqlite3.Connection
S = TaskStatus


@dataclass(frozen=True, slots=True)
class _TaskFields:
    """What every task of one submit_many call shares."""

    tenant: str
    function: str
    max_attempts: int
    default_priority: int


ROW_FIELDS = ("id", "priority", "payload", "run_at", "attributes", *KEY_COLUMNS)
"""A new task's own values, in the order of `insert_new_tasks`' JSON rows."""


def _row(task_id: str, item: Submission, fixed: _TaskFields, now: float) -> tuple[Any, ...]:
    """A new task's own values, in ROW_FIELDS order."""
    return (
        task_id,
        fixed.default_priority if item.priority is None else item.priority,
        item.payload,
        now if item.run_at is None else item.run_at,
        json_text(item.attributes),
        *key_columns(item.keys).values(),
    )


def _task_params(task_id: str, item: Submission, fixed: _TaskFields, now: float) -> dict[str, Any]:
    own = dict(zip(ROW_FIELDS, _row(task_id, item, fixed, now), strict=True))
    return own | {
        "tenant": fixed.tenant,
        "function": fixed.function,
        "max_attempts": fixed.max_attempts,
        "now": now,
    }


def _json_rows(
    task_ids: Sequence[str], items: Sequence[Submission], fixed: _TaskFields, now: float
) -> bytes | None:
    """`insert_new_tasks`' rows as one JSON array; None when a payload is not UTF-8."""
    rows: list[tuple[Any, ...]] = []
    for task_id, item in zip(task_ids, items, strict=True):
        task_id, priority, payload, *rest = _row(task_id, item, fixed, now)
        try:
            text = payload.decode()
        except UnicodeDecodeError:
            return None
        rows.append((task_id, priority, text, *rest))
    return orjson.dumps(rows)


def _enqueued_detail(item: Submission, now: float) -> str | None:
    return (
        json_text({"run_at": item.run_at})
        if item.run_at is not None and item.run_at > now
        else None
    )


class SqliteSubmits:
    """Submission ops over the named statements `q`."""

    def __init__(self, q: Mapping[str, str]) -> None:
        self.q = q

    def submit_many(
        self,
        conn: Connection,
        tenant: str,
        function: str,
        submissions: Sequence[Submission],
        now: float,
        max_attempts: int,
        default_priority: int,
    ) -> list[Submitted]:
        fixed = _TaskFields(tenant, function, max_attempts, default_priority)
        answers: list[Submitted] = []
        seen: dict[str, Submitted] = {}
        events: list[Event] = []
        run: list[Submission] = []
        for item in submissions:
            if item.task_id is None:
                run.append(item)
                continue
            if run:
                self._insert_generated(conn, run, fixed, now, answers, events)
                run = []
            earlier = seen.get(item.task_id)
            if earlier is not None:  # the same id twice in one batch: the first one holds it
                answers.append(Submitted(item.task_id, earlier.status, False, earlier.row))
                continue
            answer = self._insert_given(conn, item, item.task_id, fixed, now, events)
            seen[item.task_id] = answer
            answers.append(answer)
        if run:
            self._insert_generated(conn, run, fixed, now, answers, events)
        append_events(conn, self.q, events, first=True)
        return answers

    def submit_merged(
        self,
        conn: Connection,
        calls: list[Call],
        tenant: str,
        function: str,
        max_attempts: int,
        default_priority: int,
    ) -> list[list[Submitted]]:
        """Several callers' `submit_many` of one function as one (`GroupCommitter.run_merged`):
        `calls` holds each caller's (now, submissions), in order; answers each caller's list."""
        now, flat = merged_calls(calls)
        answers = self.submit_many(
            conn, tenant, function, flat, now, max_attempts, default_priority
        )
        return split_answers(calls, answers)

    def _insert_given(
        self,
        conn: Connection,
        item: Submission,
        task_id: str,
        fixed: _TaskFields,
        now: float,
        events: list[Event],
    ) -> Submitted:
        """Insert a task whose id the client chose; a taken id answers the existing task."""
        cursor = conn.execute(self.q["insert_task"], _task_params(task_id, item, fixed, now))
        if cursor.rowcount == 1 and cursor.lastrowid is not None:
            events.append((cursor.lastrowid, now, S.ENQUEUED, _enqueued_detail(item, now)))
            return Submitted(task_id, S.ENQUEUED, True, cursor.lastrowid)
        key = {"tenant": fixed.tenant, "id": task_id}
        row, status = conn.execute(self.q["task_row_status"], key).fetchone()
        return Submitted(task_id, TaskStatus(status), False, row)

    def _insert_generated(
        self,
        conn: Connection,
        items: Sequence[Submission],
        fixed: _TaskFields,
        now: float,
        answers: list[Submitted],
        events: list[Event],
    ) -> None:
        """Insert tasks with fresh random ids. The writer is alone and rows autoincrement, so
        the run's rows are the consecutive ones ending at last_insert_rowid.

        The rows travel as one JSON array read by a single INSERT … SELECT FROM json_each
        (SQLite binds and steps them in C, about 1.6 times the rows/s of an executemany); a run
        holding a payload that is not UTF-8, which JSON cannot carry, takes the executemany."""
        task_ids = new_task_ids(len(items), now)
        details = [_enqueued_detail(item, now) for item in items]
        rows = _json_rows(task_ids, items, fixed, now)
        if rows is None:
            conn.executemany(
                self.q["insert_new_task"],
                [_task_params(t, it, fixed, now) for t, it in zip(task_ids, items, strict=True)],
            )
        else:
            params = {"tenant": fixed.tenant, "function": fixed.function, "now": now}
            conn.execute(
                self.q["insert_new_tasks"],
                params | {"max_attempts": fixed.max_attempts, "rows": rows},
            )
        (last,) = conn.execute("SELECT last_insert_rowid()").fetchone()
        first = last - len(items) + 1
        conn.execute(
            self.q["insert_enqueued_events"],
            {"first": first, "now": now, "details": orjson.dumps(details)},
        )
        for offset, task_id in enumerate(task_ids):
            answers.append(Submitted(task_id, S.ENQUEUED, True, first + offset))
