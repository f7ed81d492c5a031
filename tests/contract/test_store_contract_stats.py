"""The Store contract, observability reads: queue stats, function stats and attempt timing.

Runs once per store implementation (see conftest.py). Times are explicit POSIX seconds.
"""

from __future__ import annotations

import contextlib
import sqlite3
from importlib.resources import files
from pathlib import Path

import pytest

from asyncfn.domain.models import Submission
from asyncfn.domain.outcomes import Resources
from asyncfn.domain.states import TaskStatus
from asyncfn.store.base import Finish, RetryLater, Store
from asyncfn.store.migrate import discover, migrate_sqlite
from tests.contract.test_store_contract import FN, T0, TENANT, claim, submit, task

S = TaskStatus

pytestmark = pytest.mark.timeout(15)


async def test_queue_stats_counts_waiting_tasks_due_or_not_per_function(store: Store) -> None:
    await submit(store, Submission(b"", task_id="a"), now=T0)
    await submit(store, Submission(b"", task_id="b", run_at=T0 + 3600), now=T0 + 5)
    await submit(store, Submission(b"", task_id="c"), now=T0 + 1, function="other")
    await submit(store, Submission(b"", task_id="d"), now=T0 + 2, tenant="beta")
    assert len(await claim(store, limit=1, now=T0 + 6, function="other")) == 1

    stats = await store.queue_stats()

    assert [(s.tenant, s.function, s.queued, s.oldest_created_at) for s in stats] == [
        (TENANT, FN, 2, T0),
        ("beta", FN, 1, T0 + 2),
    ]


async def test_queue_stats_counts_retrying_tasks_as_waiting(store: Store) -> None:
    await submit(store, Submission(b"", task_id="a"), now=T0)
    (claimed,) = await claim(store, now=T0 + 1)
    error = {"type": "ValueError", "message": "x", "traceback": None}
    assert await store.retry_later([RetryLater(claimed.row, 1, T0 + 2, T0 + 60, error)]) == [True]

    (stat,) = await store.queue_stats()

    assert (stat.queued, stat.oldest_created_at) == (1, T0)


async def test_instance_started_at_round_trips_through_the_attempt_row(store: Store) -> None:
    await submit(store, Submission(b"", task_id="a"), now=T0)
    (claimed,) = await claim(store, now=T0 + 1)
    error = {"type": "ValueError", "message": "x", "traceback": None}
    retry = RetryLater(claimed.row, 1, T0 + 2, T0 + 2, error, instance_started_at=T0 + 1.25)
    assert await store.retry_later([retry]) == [True]
    await store.promote_due(T0 + 3, 10)
    (again,) = await claim(store, now=T0 + 4)
    finish = Finish(again.row, 2, S.SUCCEEDED, T0 + 5, instance_started_at=T0 + 4.5)
    assert await store.finish([finish]) == [True]

    found = await task(store, "a")

    assert [a.instance_started_at for a in found.attempts] == [T0 + 1.25, T0 + 4.5]


async def test_claim_reports_when_the_task_became_due(store: Store) -> None:
    await submit(store, Submission(b"", task_id="a", run_at=T0 + 10), now=T0)

    (claimed,) = await claim(store, now=T0 + 11)

    assert (claimed.created_at, claimed.run_at, claimed.started_at) == (T0, T0 + 10, T0 + 11)


async def test_function_stats_counts_latencies_resources_and_recent_finishes(
    store: Store,
) -> None:
    await submit(store, *(Submission(b"", task_id=f"t{i}") for i in range(3)), now=T0)
    claimed = await claim(store, limit=2, now=T0 + 1)
    finishes = [
        Finish(
            c.row,
            1,
            S.SUCCEEDED if i == 0 else S.FAILED,
            T0 + 3 + i,
            resources=Resources(cpu_ms=100.0 * (i + 1), max_rss_mb=20.0 + i),
        )
        for i, c in enumerate(sorted(claimed, key=lambda c: c.row))
    ]
    assert await store.finish(finishes) == [True, True]

    stats = await store.function_stats(TENANT, FN, now=T0 + 30)
    old = await store.function_stats(TENANT, FN, now=T0 + 3_600)

    assert stats.counts[S.SUCCEEDED] == 1
    assert stats.counts[S.FAILED] == 1
    assert stats.counts[S.ENQUEUED] == 1
    assert set(stats.counts) == set(TaskStatus)
    assert sorted(stats.queue_wait_s) == [1.0, 1.0]
    assert sorted(stats.run_s) == [2.0, 3.0]
    assert sorted(stats.end_to_end_s) == [3.0, 4.0]
    assert stats.cpu_ms == 300.0
    assert stats.max_rss_mb == 21.0
    assert stats.finished_last_minute == 2
    assert old.finished_last_minute == 0


async def test_function_stats_of_a_function_without_tasks_is_empty(store: Store) -> None:
    stats = await store.function_stats(TENANT, "nothing", now=T0)

    assert set(stats.counts.values()) == {0}
    assert (stats.queue_wait_s, stats.run_s, stats.end_to_end_s) == ((), (), ())
    assert (stats.cpu_ms, stats.max_rss_mb, stats.finished_last_minute) == (0.0, None, 0)
    assert (stats.submitted_last_minute, stats.delayed) == (0, 0)


async def test_function_stats_counts_tasks_submitted_in_the_last_minute(store: Store) -> None:
    await submit(store, Submission(b"", task_id="old"), now=T0)
    await submit(store, *(Submission(b"", task_id=f"new{i}") for i in range(3)), now=T0 + 50)
    await submit(store, Submission(b"", task_id="other"), now=T0 + 55, function="other")
    await submit(store, Submission(b"", task_id="beta"), now=T0 + 55, tenant="beta")
    (claimed,) = await claim(store, limit=1, now=T0 + 56)
    assert await store.finish([Finish(claimed.row, 1, S.SUCCEEDED, T0 + 57)]) == [True]

    stats = await store.function_stats(TENANT, FN, now=T0 + 61)
    later = await store.function_stats(TENANT, FN, now=T0 + 200)

    assert stats.submitted_last_minute == 3
    assert later.submitted_last_minute == 0


async def test_function_stats_counts_delayed_and_backing_off_tasks_apart_from_due_ones(
    store: Store,
) -> None:
    await submit(store, Submission(b"", task_id="due"), now=T0)
    await submit(store, Submission(b"", task_id="later", run_at=T0 + 100), now=T0)
    await submit(store, Submission(b"", task_id="retry"), now=T0)
    (claimed,) = await claim(store, limit=1, now=T0 + 1)
    error = {"type": "ValueError", "message": "x", "traceback": None}
    retry = RetryLater(claimed.row, 1, T0 + 2, T0 + 30, error)
    assert await store.retry_later([retry]) == [True]

    during_backoff = await store.function_stats(TENANT, FN, now=T0 + 10)
    after_backoff = await store.function_stats(TENANT, FN, now=T0 + 40)
    all_due = await store.function_stats(TENANT, FN, now=T0 + 200)

    waiting = during_backoff.counts[S.ENQUEUED] + during_backoff.counts[S.RETRYING]
    assert waiting == 3
    assert during_backoff.delayed == 2
    assert after_backoff.delayed == 1
    assert all_due.delayed == 0


def test_migration_0005_adds_instance_started_at_to_existing_attempts(
    store_kind: str, tmp_path: Path
) -> None:
    if store_kind != "sqlite":
        pytest.skip("applies the SQLite migration files to a database left at 0004")
    migrations = discover(files("asyncfn.store.sqlite") / "migrations")
    with contextlib.closing(sqlite3.connect(tmp_path / "old.db", isolation_level=None)) as conn:
        migrate_sqlite(conn, [m for m in migrations if m.version <= 4], T0)
        conn.execute(
            "INSERT INTO tasks (id, tenant, function, status, max_attempts, payload, created_at,"
            " run_at) VALUES ('a', 't', 'f', 'Running', 1, x'', 1.0, 1.0)"
        )
        conn.execute("INSERT INTO attempts (row, number, started_at) VALUES (1, 1, 2.0)")

        migrate_sqlite(conn, migrations, T0)

        versions = [v for (v,) in conn.execute("SELECT version FROM schema_migrations")]
        row = conn.execute("SELECT started_at, instance_started_at FROM attempts").fetchone()
    assert 5 in versions
    assert row == (2.0, None)
