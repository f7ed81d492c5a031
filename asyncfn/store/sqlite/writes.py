"""The SQLite store's transitions, each an op run on the writer's connection inside the
GroupCommitter's transaction: the guarded task update and its event rows, together.

This file holds functions and a task's life in its attempts; submit.py new tasks; flow.py the claim
that starts them (under its quota); control.py a user's stop, suspend, resume and rerun;
upkeep.py expiry, lost suspended tasks and retention.
Every terminal transition also writes its destination deliveries (outbox.py), in the same op.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

import orjson

from asyncfn.domain.models import FunctionSpec
from asyncfn.domain.states import TaskStatus, sources_of
from asyncfn.store.base import Finish, NewLogLine, RetryLater
from asyncfn.store.sqlite.outbox import SqliteOutbox
from asyncfn.store.sqlite.rows import function_config, json_text

Connection = sqlite3.Connection
S = TaskStatus

IN_ATTEMPT = frozenset({S.RUNNING, S.STOPPING, S.SUSPENDED})
"""Statuses in which a task's attempt may be live, so that the attempt may finish (a Suspended
task only while it holds a lease: `finish_task` checks that)."""

Event = tuple[int, float, str, str | None]
"""An event row to append: (task row, at, status, detail JSON)."""


@cache
def ending_sources(status: TaskStatus) -> str:
    """The guard of an attempt ending in `status` (a terminal one for `finish`, Retrying for
    `retry_later`), from TRANSITIONS, as the JSON list `finish_task` and `retry_task` read."""
    if not (status.terminal or status == S.RETRYING):
        raise ValueError(f"an attempt ends in a terminal status or Retrying, not {status}")
    sources = sorted(sources_of(status) & IN_ATTEMPT)
    if not sources:
        raise ValueError(f"a running attempt cannot end as {status}")
    return orjson.dumps(sources).decode()


def new_task_ids(count: int, now: float) -> list[str]:
    """`count` fresh task ids: 32 hex digits, a millisecond time prefix then 80 random bits, so
    ids sort by creation and the unique index grows at its end instead of at random places."""
    prefix = f"{int(now * 1000):012x}"
    noise = os.urandom(10 * count).hex()
    return [prefix + noise[i * 20 : i * 20 + 20] for i in range(count)]


class SqliteWrites:
    """Transition ops over the named statements `q`."""

    def __init__(self, q: Mapping[str, str]) -> None:
        self.q = q
        self.outbox = SqliteOutbox(q)

    # -- functions and code ----------------------------------------------------------------
    def put_function(self, conn: Connection, spec: FunctionSpec, now: float) -> bool:
        key = {"tenant": spec.tenant, "name": spec.name}
        created = conn.execute(self.q["function_exists"], key).fetchone() is None
        conn.execute(
            self.q["upsert_function"],
            {
                **key,
                "config": function_config(spec),
                "code_sha256": spec.code_sha256,
                "created_at": spec.created_at or now,
                "updated_at": now,
            },
        )
        return created

    def delete_function(self, conn: Connection, tenant: str, name: str, now: float) -> int | None:
        key = {"tenant": tenant, "name": name}
        if conn.execute(self.q["function_exists"], key).fetchone() is None:
            return None
        rows = conn.execute(
            self.q["invalidate_waiting_tasks"], {"tenant": tenant, "function": name, "now": now}
        ).fetchall()
        detail = json_text({"reason": "function deleted"})
        self._events(conn, [(row, now, S.INVALID, detail) for (row,) in rows])
        # The deliveries read the function's policy, so they go before the function does.
        self.outbox.enqueue(conn, [(row, S.INVALID) for (row,) in rows], now)
        conn.execute(self.q["delete_function"], key)
        return len(rows)

    def put_code(self, conn: Connection, sha256: str, data: bytes, now: float) -> str:
        conn.execute(
            self.q["insert_code"], {"sha256": sha256, "data": data, "size": len(data), "now": now}
        )
        return sha256

    def set_function_code(
        self, conn: Connection, tenant: str, name: str, sha256: str, now: float
    ) -> tuple[Any, ...] | None:
        params = {"tenant": tenant, "name": name, "sha256": sha256, "now": now}
        row: tuple[Any, ...] | None = conn.execute(self.q["set_function_code"], params).fetchone()
        return row

    def set_function_paused(
        self, conn: Connection, tenant: str, name: str, paused: bool, now: float
    ) -> tuple[Any, ...] | None:
        params = {"tenant": tenant, "name": name, "paused": int(paused), "now": now}
        row: tuple[Any, ...] | None = conn.execute(self.q["set_function_paused"], params).fetchone()
        return row

    # -- transitions -----------------------------------------------------------------------
    def finish(self, conn: Connection, finishes: Sequence[Finish]) -> list[bool]:
        cursor = conn.cursor()
        answers: list[bool] = []
        closes: list[dict[str, Any]] = []
        events: list[Event] = []
        for f in finishes:
            instance_id = (f.detail or {}).get("instance_id")
            params = {
                "row": f.row,
                "attempt": f.attempt,
                "status": f.status,
                "sources": ending_sources(f.status),
                "at": f.at,
                "result": json_text(f.result),
                "error": json_text(f.error),
                "instance_id": instance_id,
            }
            done = cursor.execute(self.q["finish_task"], params).rowcount == 1
            answers.append(done)
            if done:
                closes.append(_attempt_close(f, f.status, instance_id))
                detail = _with_duration(f.detail, f.duration_ms)
                events.append((f.row, f.at, f.status, json_text(detail)))
        conn.executemany(self.q["close_attempt"], closes)
        self._events(conn, events)
        if events:
            ended = [(row, TaskStatus(status)) for row, _, status, _ in events]
            self.outbox.enqueue(conn, ended, max(at for _, at, _, _ in events))
        return answers

    def retry_later(self, conn: Connection, retries: Sequence[RetryLater]) -> list[bool]:
        cursor = conn.cursor()
        answers: list[bool] = []
        closes: list[dict[str, Any]] = []
        events: list[Event] = []
        for r in retries:
            instance_id = (r.detail or {}).get("instance_id")
            params = {
                "row": r.row,
                "attempt": r.attempt,
                "run_at": r.run_at,
                "sources": ending_sources(S.RETRYING),
                "error": json_text(r.error),
                "instance_id": instance_id,
            }
            done = cursor.execute(self.q["retry_task"], params).rowcount == 1
            answers.append(done)
            if done:
                closes.append(_attempt_close(r, S.RETRYING, instance_id))
                brief = {"type": r.error.get("type"), "message": r.error.get("message")}
                detail = {**(r.detail or {}), "error": brief, "run_at": r.run_at}
                if r.duration_ms is not None:
                    detail["duration_ms"] = r.duration_ms
                events.append((r.row, r.at, S.RETRYING, json_text(detail)))
        conn.executemany(self.q["close_attempt"], closes)
        self._events(conn, events)
        return answers

    def promote_due(self, conn: Connection, now: float, limit: int) -> list[tuple[str, str]]:
        rows = conn.execute(self.q["promote_due"], {"now": now, "limit": limit}).fetchall()
        rows.sort(key=lambda r: (r[3], r[0]))
        self._events(conn, [(row, now, S.ENQUEUED, None) for row, *_ in rows])
        return [(tenant, function) for _, tenant, function, _ in rows]

    def renew_leases(self, conn: Connection, node: str, rows: Sequence[int], until: float) -> int:
        params = {"node": node, "rows": orjson.dumps(list(rows)).decode(), "until": until}
        count: int = conn.execute(self.q["renew_leases"], params).rowcount
        return count

    def save_progress(
        self, conn: Connection, row: int, attempt: int, fraction: float, message: str | None
    ) -> bool:
        progress = json_text({"fraction": fraction, "message": message})
        params = {"row": row, "attempt": attempt, "progress": progress}
        return bool(conn.execute(self.q["save_progress"], params).rowcount == 1)

    def save_checkpoint(self, conn: Connection, row: int, attempt: int, checkpoint: Any) -> bool:
        params = {"row": row, "attempt": attempt, "checkpoint": json_text(checkpoint)}
        return bool(conn.execute(self.q["save_checkpoint"], params).rowcount == 1)

    def append_logs(self, conn: Connection, lines: Sequence[NewLogLine]) -> None:
        last: dict[int, int] = {}
        params: list[dict[str, Any]] = []
        for line in lines:
            seq = last.get(line.row)
            if seq is None:
                (seq,) = conn.execute(self.q["last_log_seq"], {"row": line.row}).fetchone()
            last[line.row] = seq = seq + 1
            params.append(
                {
                    "row": line.row,
                    "seq": seq,
                    "at": line.at,
                    "stream": line.stream,
                    "line": line.line,
                }
            )
        conn.executemany(self.q["insert_log"], params)

    # -- shared pieces ---------------------------------------------------------------------
    def _events(self, conn: Connection, events: Sequence[Event], first: bool = False) -> None:
        append_events(conn, self.q, events, first)


def append_events(
    conn: Connection, q: Mapping[str, str], events: Sequence[Event], first: bool = False
) -> None:
    """Append (row, at, status, detail JSON) events; `first` when each is its task's first."""
    if events:
        conn.executemany(
            q["insert_first_event" if first else "insert_event"],
            [{"row": r, "at": at, "status": s, "detail": d} for r, at, s, d in events],
        )


def _attempt_close(
    item: Finish | RetryLater, outcome: TaskStatus, instance_id: str | None
) -> dict[str, Any]:
    """`close_attempt`'s parameters: how the attempt ended and what it cost."""
    resources = item.resources
    return {
        "row": item.row,
        "attempt": item.attempt,
        "at": item.at,
        "outcome": outcome,
        "error": json_text(item.error),
        "cpu_ms": resources.cpu_ms if resources else None,
        "max_rss_mb": resources.max_rss_mb if resources else None,
        "instance_id": instance_id,
        "instance_started_at": item.instance_started_at,
    }


def _with_duration(
    detail: dict[str, Any] | None, duration_ms: float | None
) -> dict[str, Any] | None:
    """An event's detail: the caller's, plus `duration_ms` when given; None when empty."""
    merged = dict(detail or {})
    if duration_ms is not None:
        merged["duration_ms"] = duration_ms
    return merged or None
