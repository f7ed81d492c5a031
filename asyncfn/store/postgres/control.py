"""The PostgreSQL store's control transitions: a user's stop, suspend, resume and rerun.

Each runs in one transaction: read the task with its row locked (`FOR UPDATE`, so a claim or a
finish on another node waits or skips it), pick the target from its status and lease, check the
move against TRANSITIONS, then the guarded update, its event and what it owes (deliveries,
a wake-up, the signal to the node running a live attempt).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from asyncfn.domain.errors import TransitionRefused
from asyncfn.domain.models import Submitted
from asyncfn.domain.states import TaskStatus, can_move
from asyncfn.store.base import Control
from asyncfn.store.feed import ControlKind, ControlSignal
from asyncfn.store.postgres.listen import control_payload
from asyncfn.store.postgres.rows import Conn, execute, fetch_one, json_text
from asyncfn.store.postgres.writes import PgWrites
from asyncfn.store.sqlite.control import CurrentTask
from asyncfn.store.sqlite.writes import new_task_ids

S = TaskStatus
SIGNALLED: dict[TaskStatus, ControlKind] = {
    S.STOPPING: "stop",
    S.SUSPENDED: "suspend",
    S.RUNNING: "resume",
}
"""Targets of a live attempt whose node must signal it (asyncfn_control, on commit)."""


class PgControl:
    """Control ops over the named statements `q`; events and deliveries go through `writes`."""

    def __init__(self, q: Mapping[str, str], writes: PgWrites) -> None:
        self.q = q
        self._writes = writes

    async def stop(
        self, conn: Conn, tenant: str, task_id: str, now: float, detail: dict[str, Any] | None
    ) -> Control | None:
        current = await self._current(conn, tenant, task_id)
        if current is None:
            return None
        # A live attempt must be ended first (→ Stopping); a waiting task stops at once.
        target = S.STOPPING if current.leased else S.STOPPED
        if not can_move(current.status, target):
            return current.unchanged()
        name = "stop_live_task" if target == S.STOPPING else "stop_waiting_task"
        return await self._move(conn, tenant, current, target, name, now, detail, {"now": now})

    async def stop_waiting(
        self,
        conn: Conn,
        tenant: str,
        task_ids: Sequence[str],
        now: float,
        detail: dict[str, Any] | None,
    ) -> list[Control]:
        """`stop` of each waiting task of `task_ids`, in the caller's one transaction (rows
        locked in the order given); a live one (holding a lease) is answered unchanged, to be
        stopped one by one. Tasks not found are left out."""
        answers = []
        owed: list[tuple[int, TaskStatus]] = []  # deliveries, enqueued once for the batch
        for task_id in task_ids:
            current = await self._current(conn, tenant, task_id)
            if current is None:
                continue
            if current.leased or not can_move(current.status, S.STOPPED):
                answers.append(current.unchanged())
                continue
            params = {"now": now}
            moved = await self._move(
                conn, tenant, current, S.STOPPED, "stop_waiting_task", now, detail, params, owed
            )
            answers.append(moved)
        await self._writes.outbox.enqueue(conn, owed, now)
        return answers

    async def suspend(
        self, conn: Conn, tenant: str, task_id: str, now: float, detail: dict[str, Any] | None
    ) -> Control | None:
        current = await self._current(conn, tenant, task_id)
        if current is None:
            return None
        if not can_move(current.status, S.SUSPENDED):
            return current.unchanged()
        params = {"leased": current.leased}
        return await self._move(
            conn, tenant, current, S.SUSPENDED, "suspend_task", now, detail, params
        )

    async def resume(
        self, conn: Conn, tenant: str, task_id: str, now: float, detail: dict[str, Any] | None
    ) -> Control | None:
        current = await self._current(conn, tenant, task_id)
        if current is None:
            return None
        # Suspended while running → Running; held in the queue → back to it.
        target = S.RUNNING if current.leased else S.ENQUEUED
        # Resume is the way out of Suspended only (Retrying → Enqueued is the promoter's).
        if current.status != S.SUSPENDED or not can_move(current.status, target):
            return current.unchanged()
        params = {"leased": current.leased, "status": target.value}
        return await self._move(conn, tenant, current, target, "resume_task", now, detail, params)

    async def rerun(
        self,
        conn: Conn,
        tenant: str,
        task_id: str,
        new_task_id: str | None,
        now: float,
        max_attempts: int,
        default_priority: int,
    ) -> Submitted | None:
        key = {"tenant": tenant, "id": task_id}
        source = await fetch_one(conn, self.q["rerun_source"], key)
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
            "detail": json_text({"rerun_of": task_id}),
        }
        inserted = await fetch_one(conn, self.q["insert_rerun_task"], params)
        if inserted is not None:
            return Submitted(rerun_id, S.ENQUEUED, True, inserted[0])
        taken = await fetch_one(conn, self.q["task_row_status"], {"tenant": tenant, "id": rerun_id})
        if taken is None:  # taken by a transaction that has since rolled back: a rare retry
            raise TransitionRefused(rerun_id, "unknown", "rerun")
        return Submitted(rerun_id, TaskStatus(taken[1]), False, taken[0])

    # -- shared pieces ---------------------------------------------------------------------
    async def _current(self, conn: Conn, tenant: str, task_id: str) -> CurrentTask | None:
        row = await fetch_one(conn, self.q["task_control"], {"tenant": tenant, "id": task_id})
        if row is None:
            return None
        row_id, tid, function, status, attempt, node, leased = row
        return CurrentTask(row_id, tid, function, TaskStatus(status), attempt, node, bool(leased))

    async def _move(
        self,
        conn: Conn,
        tenant: str,
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
        guard = {"row": current.row, "source": current.status.value, "attempt": current.attempt}
        if await execute(conn, self.q[statement], {**guard, **params}) != 1:
            return current.unchanged()  # the row is locked, so this is only a safety net
        event_detail = json_text({**(detail or {}), "from": current.status.value})
        await self._writes.append_events(conn, [(current.row, now, target, event_detail)])
        if target.terminal and owed is not None:
            owed.append((current.row, target))
        elif target.terminal:  # a waiting task stopped at once
            await self._writes.outbox.enqueue(conn, [(current.row, target)], now)
        if target == S.ENQUEUED:
            wake = {"tenant": tenant, "function": current.function}
            await execute(conn, self.q["notify_ready"], wake)
        kind = SIGNALLED.get(target)
        if kind is not None and current.leased and current.node is not None:
            signal = ControlSignal(
                kind, current.row, current.attempt, current.node, tenant, current.function
            )
            await execute(conn, self.q["notify_control"], {"payload": control_payload(signal)})
        return current.moved(target, live=current.leased)
