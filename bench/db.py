"""Read-only queries on the server's SQLite file (POSIX-second timestamps of the tasks table)."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@contextmanager
def connect(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection (never writes, never creates the file)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
    try:
        yield conn
    finally:
        conn.close()


def status_counts(conn: sqlite3.Connection, function: str) -> dict[str, int]:
    rows = conn.execute(
        "SELECT status, count(*) FROM tasks WHERE function = ? GROUP BY status", (function,)
    )
    return {str(status): int(n) for status, n in rows}


def count_succeeded(conn: sqlite3.Connection, function: str) -> int:
    (n,) = conn.execute(
        "SELECT count(*) FROM tasks WHERE function = ? AND status = 'Succeeded'", (function,)
    ).fetchone()
    return int(n)


@dataclass(frozen=True, slots=True)
class DrainSpan:
    """The time span of a set of tasks: their run_at range and when the first and last ran.

    Times not known yet (no task started or finished) are NaN.
    """

    count: int
    min_run_at: float
    max_run_at: float
    min_started_at: float
    max_finished_at: float


def drain_span(conn: sqlite3.Connection, function: str) -> DrainSpan:
    row = conn.execute(
        "SELECT count(*), min(run_at), max(run_at), min(started_at), max(finished_at) "
        "FROM tasks WHERE function = ?",
        (function,),
    ).fetchone()
    return DrainSpan(int(row[0]), *(math.nan if v is None else float(v) for v in row[1:]))


@dataclass(frozen=True, slots=True)
class TaskTimes:
    """One task's status and timestamps (POSIX seconds)."""

    id: str
    status: str
    created_at: float
    run_at: float
    started_at: float | None
    finished_at: float | None
    instance_id: str | None


def task_times(conn: sqlite3.Connection, ids: Iterable[str]) -> list[TaskTimes]:
    """The times of the tasks with these ids (in chunks, under SQLite's variable limit)."""
    wanted = list(ids)
    found: list[TaskTimes] = []
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        marks = ",".join("?" * len(chunk))
        rows = conn.execute(
            "SELECT id, status, created_at, run_at, started_at, finished_at, instance_id "
            f"FROM tasks WHERE id IN ({marks})",
            chunk,
        )
        found.extend(TaskTimes(*row) for row in rows)
    return found
