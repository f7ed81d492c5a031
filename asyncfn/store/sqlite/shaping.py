"""The SQLite store's submission of a debounced or throttled function (store/shaping.py holds
the arithmetic): one op on the writer's connection, so nothing else writes in between."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from asyncfn.domain.models import Submission, Submitted
from asyncfn.domain.states import TaskStatus
from asyncfn.store.shaping import (
    Pending,
    Shaping,
    debounce_keys,
    fresh_items,
    plan,
    stopped_detail,
    supersessions,
    throttle_keys,
)
from asyncfn.store.sqlite.rows import json_text
from asyncfn.store.sqlite.writes import Event, append_events, new_task_ids
from asyncfn.store.taskkeys import key_columns

Connection = sqlite3.Connection
S = TaskStatus


class SqliteShaping:
    """Shaped submission over the named statements `q`."""

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
        shaping: Shaping,
    ) -> list[Submitted]:
        """As `SqliteWrites.submit_many`, with each new task's run_at from `shaping` and the
        waiting tasks it supersedes Stopped. A taken id answers its task and shapes nothing."""
        scope = {"tenant": tenant, "function": function}
        generated = iter(new_task_ids(sum(s.task_id is None for s in submissions), now))
        ids = [next(generated) if s.task_id is None else s.task_id for s in submissions]
        held: dict[str, Submitted] = {}  # taken in the store, or by an earlier item of the batch
        for task_id in {s.task_id for s in submissions if s.task_id is not None}:
            key = {"tenant": tenant, "id": task_id}
            existing = conn.execute(self.q["task_row_status"], key).fetchone()
            if existing is not None:
                held[task_id] = Submitted(task_id, TaskStatus(existing[1]), False, existing[0])
        fresh = fresh_items(ids, held)
        pending = self._pending(conn, scope, debounce_keys(shaping, submissions))
        tats = self._tats(conn, scope, throttle_keys(shaping, submissions))
        shaped = plan(shaping, submissions, ids, fresh, now, pending, tats)

        answers: list[Submitted] = []
        created: list[tuple[int, str] | None] = []
        events: list[Event] = []
        first_ats: list[dict[str, Any]] = []
        for i, (item, task_id) in enumerate(zip(submissions, ids, strict=True)):
            run_at = shaped.run_ats[i]
            if not fresh[i] or run_at is None:
                first = held[task_id]
                answers.append(Submitted(task_id, first.status, False, first.row))
                created.append(None)
                continue
            params = _params(task_id, item, scope, max_attempts, default_priority, now, run_at)
            cursor = conn.execute(self.q["insert_task"], params)
            row = cursor.lastrowid
            assert cursor.rowcount == 1 and row is not None  # ids were checked above
            events.append((row, now, S.ENQUEUED, json_text(shaped.details[i])))
            first_at = shaped.first_ats[i]
            if first_at is not None:
                first_ats.append({"row": row, "first_at": first_at})
            answers.append(Submitted(task_id, S.ENQUEUED, True, row, run_at))
            held[task_id] = answers[-1]
            created.append((row, task_id))
        append_events(conn, self.q, events, first=True)
        conn.executemany(self.q["set_debounce_first_at"], first_ats)
        for tkey, tat in shaped.tats.items():
            conn.execute(self.q["save_throttle_tat"], {**scope, "key": tkey, "tat": tat})
        self._stop(conn, supersessions(shaping, submissions, created, pending), now)
        return answers

    def _pending(
        self, conn: Connection, scope: dict[str, str], keys: list[str]
    ) -> dict[str, list[Pending]]:
        found: dict[str, list[Pending]] = {}
        if keys:
            params = {**scope, "keys": orjson.dumps(keys).decode()}
            for key, row, task_id, first_at, run_at in conn.execute(
                self.q["debounce_pending"], params
            ):
                found.setdefault(key, []).append(Pending(row, task_id, first_at, run_at))
        return found

    def _tats(self, conn: Connection, scope: dict[str, str], keys: list[str]) -> dict[str, float]:
        if not keys:
            return {}
        params = {**scope, "keys": orjson.dumps(keys).decode()}
        return {key: tat for key, tat in conn.execute(self.q["throttle_tats"], params)}

    def _stop(self, conn: Connection, stops: list[tuple[int, str]], now: float) -> None:
        """The waiting task of each (row, superseded_by) → Stopped, as a user's stop of a waiting
        task, without deliveries: it did not fail, the task that superseded it carries on."""
        events: list[Event] = []
        for row, by in stops:
            guard = {"row": row, "source": S.ENQUEUED, "attempt": 0, "now": now}
            if conn.execute(self.q["stop_waiting_task"], guard).rowcount == 1:
                events.append((row, now, S.STOPPED, json_text(stopped_detail(by))))
        append_events(conn, self.q, events)


def _params(
    task_id: str,
    item: Submission,
    scope: dict[str, str],
    max_attempts: int,
    default_priority: int,
    now: float,
    run_at: float,
) -> dict[str, Any]:
    return {
        "id": task_id,
        **scope,
        "max_attempts": max_attempts,
        "priority": default_priority if item.priority is None else item.priority,
        "payload": item.payload,
        "now": now,
        "run_at": run_at,
        "attributes": json_text(item.attributes),
        **key_columns(item.keys),
    }
