"""The SQLite store's control transitions: a user's stop, suspend, resume and rerun.

Each is one op on the writer's connection: read the task, pick the target from its status and
whether it holds a lease (a Suspended task holds one only when it was suspended running), check
the move against TRANSITIONS, then a guarded update and its event, in one transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from asyncfn.domain.errors import TransitionRefused
from asyncfn.domain.models import Submitted
from asyncfn.domain.states import TaskStatus, can_move
from asyncfn.store.base import Control
from asyncfn.store.sqlite.outbox import SqliteOutbox
from asyncfn.store.sqlite.rows import json_text
from asyncfn.store.sqlite.writes import append_events, new_task_ids

Connection = sqlite3.Connection
S = TaskStatus


@dataclass(frozen=True, slots=True)
class CurrentTask:
    """A task as `task_control` reads it."""

    row: int
    id: str
    function: str
    status: TaskStatus
    attempt: int
    node: str | None
    leased: bool

    def unchanged(self) -> Control:
        return self._answer(self.status, changed=False, live=self.leased)

    def moved(self, target: TaskStatus, live: bool) -> Control:
        return self._answer(target, changed=True, live=live)

    def _answer(self, status: TaskStatus, changed: bool, live: bool) -> Control:
        return Control(
            row=self.row,
            id=self.id,
            function=self.function,
            previous=self.status,
            status=status,
            changed=changed,
            live=live,
            node=self.node if live else None,
            attempt=self.attempt,
        )


class SqliteControl:
    """Control ops over the named statements `q`."""

    def __init__(self, q: Mapping[str, str]) -> None:
        self.q = q
        self.outbox = SqliteOutbox(q)

    def stop(
        self, conn: Connection, tenant: str, task_id: str, now: float, detail: dict[str, Any] | None
    ) -> Control | None:
        current = self._current(conn, tenant, task_id)
        if current is None:
            return None
        # A live attempt must be ended first (→ Stopping); a waiting task stops at once.
        target = S.STOPPING if current.leased else S.STOPPED
        if not can_move(current.status, target):
            return current.unchanged()
        name = "stop_live_task" if target == S.STOPPING else "stop_waiting_task"
        return self._move(conn, current, target, name, now, detail, {"now": now})

    def stop_waiting(
        self,
        conn: Connection,
        tenant: str,
        task_ids: Sequence[str],
        now: float,
        detail: dict[str, Any] | None,
    ) -> list[Control]:
        """`stop` of each waiting task of `task_ids`, in the caller's one transaction; a live
        one (holding a lease) is answered unchanged, to be stopped one by one. Tasks not found
        are left out."""
        answers = []
        owed: list[tuple[int, TaskStatus]] = []  # deliveries, enqueued once for the batch
        for task_id in task_ids:
            current = self._current(conn, tenant, task_id)
            if current is None:
                continue
            if current.leased or not can_move(current.status, S.STOPPED):
                answers.append(current.unchanged())
                continue
            params = {"now": now}
            answers.append(
                self._move(conn, current, S.STOPPED, "stop_waiting_task", now, detail, params, owed)
            )
        self.outbox.enqueue(conn, owed, now)
        return answers

    def suspend(
        self, conn: Connection, tenant: str, task_id: str, now: float, detail: dict[str, Any] | None
    ) -> Control | None:
        current = self._current(conn, tenant, task_id)
        if current is None:
            return None
        if not can_move(current.status, S.SUSPENDED):
            return current.unchanged()
        params = {"leased": current.leased}
        return self._move(conn, current, S.SUSPENDED, "suspend_task", now, detail, params)

    def resume(
        self, conn: Connection, tenant: str, task_id: str, now: float, detail: dict[str, Any] | None
    ) -> Control | None:
        current = self._current(conn, tenant, task_id)
        if current is None:
            return None
        # Suspended while running → Running; held in the queue → back to it.
        target = S.RUNNING if current.leased else S.ENQUEUED
        # Resume is the way out of Suspended only (TRANSITIONS also has Retrying → Enqueued,
        # which belongs to the promoter).
        if current.status != S.SUSPENDED or not can_move(current.status, target):
            return current.unchanged()
        params = {"leased": current.leased, "status": target}
        return self._move(conn, current, target, "resume_task", now, detail, params)

    def rerun(
        self,
        conn: Connection,
        tenant: str,
        task_id: str,
        new_task_id: str | None,
        now: float,
        max_attempts: int,
        default_priority: int,
    ) -> Submitted | None:
        source = conn.execute(self.q["rerun_source"], {"tenant": tenant, "id": task_id}).fetchone()
        if source is None:
            return None
        function, status, payload = source
        if not TaskStatus(status).terminal:
            raise TransitionRefused(task_id, status, "rerun")
        rerun_id = new_task_id if new_task_id is not None else new_task_ids(1, now)[0]
        params = {
            "id": rerun_id,
            "tenant": tenant,
            "function": function,
            "max_attempts": max_attempts,
            "priority": default_priority,
            "payload": payload,
            "now": now,
            "rerun_of": task_id,
        }
        cursor = conn.execute(self.q["insert_rerun_task"], params)
        if cursor.rowcount != 1 or cursor.lastrowid is None:
            key = {"tenant": tenant, "id": rerun_id}
            row, taken = conn.execute(self.q["task_row_status"], key).fetchone()
            return Submitted(rerun_id, TaskStatus(taken), False, row)
        event = (cursor.lastrowid, now, S.ENQUEUED, json_text({"rerun_of": task_id}))
        append_events(conn, self.q, [event], first=True)
        return Submitted(rerun_id, S.ENQUEUED, True, cursor.lastrowid)

    # -- shared pieces ---------------------------------------------------------------------
    def _current(self, conn: Connection, tenant: str, task_id: str) -> CurrentTask | None:
        row = conn.execute(self.q["task_control"], {"tenant": tenant, "id": task_id}).fetchone()
        if row is None:
            return None
        row_id, tid, function, status, attempt, node, leased = row
        return CurrentTask(row_id, tid, function, TaskStatus(status), attempt, node, bool(leased))

    def _move(
        self,
        conn: Connection,
        current: CurrentTask,
        target: TaskStatus,
        statement: str,
        now: float,
        detail: dict[str, Any] | None,
        params: dict[str, Any],
        owed: list[tuple[int, TaskStatus]] | None = None,
    ) -> Control:
        """The guarded update `statement` (by row, status and attempt) and its event; a
        terminal move's deliveries are enqueued, or added to `owed` for the caller to."""
        guard = {"row": current.row, "source": current.status, "attempt": current.attempt}
        if conn.execute(self.q[statement], {**guard, **params}).rowcount != 1:
            return current.unchanged()  # the writer is alone, so this is only a safety net
        event_detail = json_text({**(detail or {}), "from": current.status.value})
        append_events(conn, self.q, [(current.row, now, target, event_detail)])
        if target.terminal and owed is not None:
            owed.append((current.row, target))
        elif target.terminal:  # a waiting task stopped at once
            self.outbox.enqueue(conn, [(current.row, target)], now)
        return current.moved(target, live=current.leased)
