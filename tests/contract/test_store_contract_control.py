"""The Store contract, part 3: control and upkeep — stop, suspend, resume, rerun, expiry, lost
suspended tasks, retention and paused functions.

Runs once per store implementation (see conftest.py). Times are explicit POSIX seconds.
"""

from __future__ import annotations

import contextlib
import sqlite3
from importlib.resources import files
from pathlib import Path

import pytest

from asyncfn.domain.errors import TransitionRefused
from asyncfn.domain.models import ClaimedTask, FunctionSpec, Submission, Submitted, Task
from asyncfn.domain.states import TaskStatus, can_move
from asyncfn.store.base import Control, Finish, NewLogLine, RetryLater, Store
from asyncfn.store.migrate import discover, migrate_sqlite
from asyncfn.store.sqlite.store import SqliteStore

S = TaskStatus
T0 = 1_700_000_000.0
TENANT = "acme"
FN = "resize"
LEASE_S = 30.0
WHO = {"by": "user"}

pytestmark = pytest.mark.timeout(15)


async def submit(store: Store, *ids: str, now: float = T0, function: str = FN) -> None:
    items = [Submission(i.encode(), task_id=i) for i in ids]
    await store.submit_many(TENANT, function, items, now, 3, 0)


async def claim(
    store: Store, now: float = T0 + 1, node: str = "node-a", created_after: float = 0.0
) -> list[ClaimedTask]:
    claimed = await store.claim_ready(
        TENANT, FN, node, 100, now, now + LEASE_S, created_after=created_after
    )
    return list(claimed)


async def task(store: Store, task_id: str) -> Task:
    found = await store.get_task(TENANT, task_id)
    assert found is not None, task_id
    return found


async def running(store: Store, task_id: str = "t1") -> ClaimedTask:
    await submit(store, task_id)
    (claimed,) = await claim(store)
    return claimed


async def retrying(store: Store, task_id: str = "t1") -> ClaimedTask:
    claimed = await running(store, task_id)
    retry = RetryLater(claimed.row, 1, T0 + 2, T0 + 60, {"type": "ValueError"})
    assert await store.retry_later([retry]) == [True]
    return claimed


async def stop(store: Store, task_id: str = "t1", now: float = T0 + 5) -> Control:
    answer = await store.stop(TENANT, task_id, now, WHO)
    assert answer is not None
    return answer


async def suspend(store: Store, task_id: str = "t1", now: float = T0 + 5) -> Control:
    answer = await store.suspend(TENANT, task_id, now, WHO)
    assert answer is not None
    return answer


async def resume(store: Store, task_id: str = "t1", now: float = T0 + 6) -> Control:
    answer = await store.resume(TENANT, task_id, now, WHO)
    assert answer is not None
    return answer


def last_event(t: Task) -> tuple[str, float, object]:
    e = t.events[-1]
    return (e.status, e.at, e.detail)


# -- stop --------------------------------------------------------------------------------------


async def test_stop_of_an_enqueued_task_stops_it_at_once(store: Store) -> None:
    await submit(store, "t1")

    answer = await stop(store)

    assert (answer.previous, answer.status, answer.changed, answer.live) == (
        S.ENQUEUED,
        S.STOPPED,
        True,
        False,
    )
    assert (answer.id, answer.function, answer.node) == ("t1", FN, None)
    got = await task(store, "t1")
    assert (got.status, got.finished_at) == (S.STOPPED, T0 + 5)
    assert last_event(got) == ("Stopped", T0 + 5, {"by": "user", "from": "Enqueued"})
    assert await claim(store, now=T0 + 10) == []


async def test_stop_of_a_retrying_task_stops_it_at_once(store: Store) -> None:
    await retrying(store)

    answer = await stop(store)

    assert (answer.previous, answer.status, answer.changed) == (S.RETRYING, S.STOPPED, True)
    got = await task(store, "t1")
    assert (got.status, got.finished_at) == (S.STOPPED, T0 + 5)
    assert await store.promote_due(T0 + 100, 10) == []


async def test_stop_of_a_task_suspended_in_the_queue_stops_it_at_once(store: Store) -> None:
    await submit(store, "t1")
    await suspend(store, now=T0 + 2)

    answer = await stop(store)

    assert (answer.previous, answer.status, answer.changed) == (S.SUSPENDED, S.STOPPED, True)
    assert (await task(store, "t1")).status == S.STOPPED


async def test_stop_of_a_running_task_goes_through_stopping_then_finishes_stopped(
    store: Store,
) -> None:
    claimed = await running(store)

    answer = await stop(store)

    assert (answer.previous, answer.status, answer.changed, answer.live) == (
        S.RUNNING,
        S.STOPPING,
        True,
        True,
    )
    assert (answer.node, answer.attempt) == ("node-a", 1)
    stopping = await task(store, "t1")
    assert (stopping.status, stopping.finished_at, stopping.node) == (S.STOPPING, None, "node-a")
    assert last_event(stopping) == ("Stopping", T0 + 5, {"by": "user", "from": "Running"})
    assert await store.renew_leases("node-a", [claimed.row], T0 + 100) == 1

    assert await store.finish([Finish(claimed.row, 1, S.STOPPED, T0 + 7)]) == [True]
    stopped = await task(store, "t1")
    assert (stopped.status, stopped.finished_at) == (S.STOPPED, T0 + 7)
    assert stopped.attempts[-1].outcome == "Stopped"


async def test_a_stopping_task_cannot_finish_succeeded_the_stop_wins(store: Store) -> None:
    claimed = await running(store)
    await stop(store)

    assert await store.finish([Finish(claimed.row, 1, S.SUCCEEDED, T0 + 6, result=1)]) == [False]
    assert await store.retry_later([RetryLater(claimed.row, 1, T0 + 6, T0 + 9, {})]) == [False]
    assert (await task(store, "t1")).status == S.STOPPING


async def test_stop_of_a_task_suspended_while_running_goes_to_stopping(store: Store) -> None:
    claimed = await running(store)
    await suspend(store)

    answer = await stop(store, now=T0 + 6)

    assert (answer.previous, answer.status, answer.live) == (S.SUSPENDED, S.STOPPING, True)
    assert await store.finish([Finish(claimed.row, 1, S.STOPPED, T0 + 7)]) == [True]
    assert (await task(store, "t1")).status == S.STOPPED


async def test_a_second_stop_changes_nothing(store: Store) -> None:
    await running(store)
    await stop(store)
    before = await task(store, "t1")

    again = await stop(store, now=T0 + 6)

    assert (again.previous, again.status, again.changed, again.live) == (
        S.STOPPING,
        S.STOPPING,
        False,
        True,
    )
    assert await task(store, "t1") == before


async def test_stop_of_a_terminal_task_answers_its_status_and_changes_nothing(
    store: Store,
) -> None:
    claimed = await running(store)
    await store.finish([Finish(claimed.row, 1, S.SUCCEEDED, T0 + 2, result=1)])
    before = await task(store, "t1")

    answer = await stop(store)

    assert (answer.status, answer.changed, answer.live) == (S.SUCCEEDED, False, False)
    assert await task(store, "t1") == before


async def test_control_of_an_unknown_task_is_none(store: Store) -> None:
    assert await store.stop(TENANT, "nope", T0, None) is None
    assert await store.suspend(TENANT, "nope", T0, None) is None
    assert await store.resume(TENANT, "nope", T0, None) is None
    await submit(store, "t1")
    assert await store.stop("umbrella", "t1", T0, None) is None


# -- suspend and resume ------------------------------------------------------------------------


async def test_a_suspended_queued_task_is_held_out_of_dispatch_until_resumed(
    store: Store,
) -> None:
    await submit(store, "t1")

    held = await suspend(store, now=T0 + 1)

    assert (held.previous, held.status, held.changed, held.live) == (
        S.ENQUEUED,
        S.SUSPENDED,
        True,
        False,
    )
    assert await claim(store, now=T0 + 2) == []
    assert await store.next_run_at(TENANT, FN) is None

    back = await resume(store, now=T0 + 3)

    assert (back.previous, back.status, back.changed, back.live) == (
        S.SUSPENDED,
        S.ENQUEUED,
        True,
        False,
    )
    got = await task(store, "t1")
    assert (got.status, got.run_at) == (S.ENQUEUED, T0)
    assert [(e.status, e.detail) for e in got.events[-2:]] == [
        ("Suspended", {"by": "user", "from": "Enqueued"}),
        ("Enqueued", {"by": "user", "from": "Suspended"}),
    ]
    assert [c.id for c in await claim(store, now=T0 + 4)] == ["t1"]


async def test_a_suspended_retrying_task_resumes_into_the_queue_after_its_backoff(
    store: Store,
) -> None:
    await retrying(store)  # run_at T0 + 60
    await suspend(store)

    assert await store.promote_due(T0 + 100, 10) == []
    assert (await resume(store)).status == S.ENQUEUED
    assert await claim(store, now=T0 + 59) == []
    (again,) = await claim(store, now=T0 + 60)
    assert again.attempt == 2


async def test_a_running_task_suspends_keeping_its_lease_and_resumes_running(
    store: Store,
) -> None:
    claimed = await running(store)
    started = (await task(store, "t1")).started_at

    frozen = await suspend(store)

    assert (frozen.previous, frozen.status, frozen.changed, frozen.live) == (
        S.RUNNING,
        S.SUSPENDED,
        True,
        True,
    )
    assert (frozen.node, frozen.attempt) == ("node-a", 1)
    assert await store.renew_leases("node-a", [claimed.row], T0 + 100) == 1
    assert await store.find_lost(None, T0 + 99, 10) == []

    thawed = await resume(store)

    assert (thawed.previous, thawed.status, thawed.changed, thawed.live) == (
        S.SUSPENDED,
        S.RUNNING,
        True,
        True,
    )
    got = await task(store, "t1")
    assert (got.status, got.attempt, got.started_at, got.node) == (S.RUNNING, 1, started, "node-a")
    assert await store.finish([Finish(claimed.row, 1, S.SUCCEEDED, T0 + 8, result=2)]) == [True]


@pytest.mark.parametrize("end", [S.SUCCEEDED, S.FAILED, S.STOPPED, S.RETRYING])
async def test_the_attempt_of_a_task_suspended_while_running_ends_as_transitions_allow(
    store: Store, end: TaskStatus
) -> None:
    """The attempt may have ended just as the freeze came; finish and retry_later read
    TRANSITIONS for what a Suspended task (holding a lease) may end as."""
    claimed = await running(store)
    await suspend(store)

    if end == S.RETRYING:
        answer = await store.retry_later([RetryLater(claimed.row, 1, T0 + 6, T0 + 9, {})])
    else:
        answer = await store.finish([Finish(claimed.row, 1, end, T0 + 6, error={})])

    allowed = can_move(S.SUSPENDED, end)
    assert answer == [allowed]
    assert (await task(store, "t1")).status == (end if allowed else S.SUSPENDED)


async def test_a_task_suspended_in_the_queue_has_no_attempt_to_finish(store: Store) -> None:
    await retrying(store)
    await suspend(store)
    row = (await task(store, "t1")).row

    for end in (S.SUCCEEDED, S.FAILED, S.STOPPED):
        assert await store.finish([Finish(row, 1, end, T0 + 6, error={})]) == [False]
    assert await store.retry_later([RetryLater(row, 1, T0 + 6, T0 + 9, {})]) == [False]
    assert (await task(store, "t1")).status == S.SUSPENDED


async def test_suspend_is_refused_when_suspended_stopping_or_terminal(store: Store) -> None:
    await submit(store, "held", "stopping", "done")
    await suspend(store, "held")
    await stop(store, "done")
    await claim(store)
    await stop(store, "stopping")

    for task_id, status in (("held", S.SUSPENDED), ("stopping", S.STOPPING), ("done", S.STOPPED)):
        before = await task(store, task_id)
        answer = await suspend(store, task_id, now=T0 + 9)
        assert (answer.status, answer.changed) == (status, False), task_id
        assert await task(store, task_id) == before


async def test_resume_is_refused_unless_suspended(store: Store) -> None:
    await retrying(store, "retrying")
    await submit(store, "running", now=T0 + 3)
    await claim(store, now=T0 + 4)
    await submit(store, "queued", now=T0 + 5)

    for task_id, status in (
        ("queued", S.ENQUEUED),
        ("retrying", S.RETRYING),
        ("running", S.RUNNING),
    ):
        before = await task(store, task_id)
        answer = await resume(store, task_id, now=T0 + 9)
        assert (answer.status, answer.changed) == (status, False), task_id
        assert await task(store, task_id) == before


# -- expiry ------------------------------------------------------------------------------------


async def test_expire_ends_only_stale_waiting_tasks_with_an_error(store: Store) -> None:
    await submit(store, "old-running", now=T0)
    await claim(store, now=T0 + 1)
    await retrying(store, "old-retrying")
    await submit(store, "old-queued", now=T0 + 2)
    await submit(store, "old-suspended", now=T0 + 2)
    await suspend(store, "old-suspended", now=T0 + 3)
    await submit(store, "old-other-fn", now=T0 + 2, function="thumbnail")
    await submit(store, "fresh", now=T0 + 50)

    assert await store.expire(TENANT, FN, created_before=T0 + 50, now=T0 + 70, limit=10) == 2

    for task_id in ("old-retrying", "old-queued"):
        got = await task(store, task_id)
        assert (got.status, got.finished_at) == (S.EXPIRED, T0 + 70)
        assert got.error == {
            "type": "Expired",
            "message": "not started within the function's max event age",
            "traceback": None,
        }
        assert last_event(got) == ("Expired", T0 + 70, {"created_at": got.created_at})
    statuses = {t: (await task(store, t)).status for t in ("old-running", "old-suspended")}
    assert statuses == {"old-running": S.RUNNING, "old-suspended": S.SUSPENDED}
    assert (await task(store, "old-other-fn")).status == S.ENQUEUED
    assert (await task(store, "fresh")).status == S.ENQUEUED


async def test_expire_is_bounded_oldest_first(store: Store) -> None:
    for i in range(5):
        await submit(store, f"t{i}", now=T0 + i)

    assert await store.expire(TENANT, FN, T0 + 10, T0 + 20, limit=2) == 2
    statuses = [(await task(store, f"t{i}")).status for i in range(5)]
    assert statuses == [S.EXPIRED, S.EXPIRED, S.ENQUEUED, S.ENQUEUED, S.ENQUEUED]
    assert await store.expire(TENANT, FN, T0 + 10, T0 + 20, limit=10) == 3
    assert await store.expire(TENANT, FN, T0 + 10, T0 + 20, limit=10) == 0


async def test_claim_skips_tasks_created_before_created_after(store: Store) -> None:
    await submit(store, "stale", now=T0)
    await submit(store, "fresh", now=T0 + 10)

    claimed = await claim(store, now=T0 + 20, created_after=T0 + 10)

    assert [c.id for c in claimed] == ["fresh"]
    assert (await task(store, "stale")).status == S.ENQUEUED


# -- lost tasks --------------------------------------------------------------------------------


async def test_find_lost_includes_stopping_and_suspended_running_tasks_with_status(
    store: Store,
) -> None:
    await submit(store, "running", "stopping", "frozen", "held")
    await suspend(store, "held", now=T0 + 0.5)
    await claim(store, now=T0 + 1)  # leases until T0 + 31
    await stop(store, "stopping")
    await suspend(store, "frozen")

    assert await store.find_lost(None, T0 + 30, 10) == []
    lost = await store.find_lost(None, T0 + 31, 10)
    assert sorted((t.id, t.status) for t in lost) == [
        ("frozen", S.SUSPENDED),
        ("running", S.RUNNING),
        ("stopping", S.STOPPING),
    ]
    by_node = await store.find_lost("node-a", T0 + 2, 10)
    assert sorted(t.id for t in by_node) == ["frozen", "running", "stopping"]
    assert all(t.node == "node-a" and t.attempt == 1 for t in by_node)


async def test_release_lost_keeps_a_suspended_task_but_drops_its_lease(store: Store) -> None:
    claimed = await running(store)
    await suspend(store)

    assert await store.release_lost(claimed.row, 2, T0 + 40, {"lost_node": "node-a"}) is False
    assert await store.release_lost(claimed.row, 1, T0 + 40, {"lost_node": "node-a"}) is True

    got = await task(store, "t1")
    assert got.status == S.SUSPENDED
    assert last_event(got) == ("Suspended", T0 + 40, {"lost_node": "node-a"})
    attempt = got.attempts[-1]
    assert (attempt.number, attempt.finished_at, attempt.outcome) == (1, T0 + 40, "NodeLost")
    assert await store.find_lost("node-a", T0 + 100, 10) == []
    assert await store.renew_leases("node-a", [claimed.row], T0 + 200) == 0
    assert await store.release_lost(claimed.row, 1, T0 + 41, {}) is False

    assert (await resume(store, now=T0 + 50)).status == S.ENQUEUED
    (again,) = await claim(store, now=T0 + 51)
    assert again.attempt == 2


async def test_release_lost_refuses_a_running_task(store: Store) -> None:
    claimed = await running(store)

    assert await store.release_lost(claimed.row, 1, T0 + 40, {}) is False
    assert (await task(store, "t1")).status == S.RUNNING


# -- rerun -------------------------------------------------------------------------------------


async def test_rerun_of_a_terminal_task_is_a_new_linked_task_with_its_payload(
    store: Store,
) -> None:
    claimed = await running(store)
    await store.finish([Finish(claimed.row, 1, S.FAILED, T0 + 2, error={"type": "E"})])

    answer = await store.rerun(TENANT, "t1", None, T0 + 10, max_attempts=4, default_priority=7)

    assert answer is not None and answer.created and answer.status == S.ENQUEUED
    assert answer.task_id != "t1"
    again = await task(store, answer.task_id)
    assert (again.rerun_of, again.function, again.payload) == ("t1", FN, b"t1")
    assert (again.status, again.attempt, again.max_attempts, again.priority) == (
        S.ENQUEUED,
        0,
        4,
        7,
    )
    assert again.created_at == again.run_at == T0 + 10
    assert [(e.status, e.detail) for e in again.events] == [("Enqueued", {"rerun_of": "t1"})]
    assert (await task(store, "t1")).rerun_of is None
    assert [c.id for c in await claim(store, now=T0 + 11)] == [answer.task_id]


async def test_rerun_with_a_chosen_id_and_a_taken_one(store: Store) -> None:
    await submit(store, "t1", "taken")
    await stop(store, "t1")

    chosen = await store.rerun(TENANT, "t1", "t1-again", T0 + 10, 3, 0)
    taken = await store.rerun(TENANT, "t1", "taken", T0 + 11, 3, 0)

    assert chosen is not None and chosen.row is not None
    assert chosen == Submitted("t1-again", S.ENQUEUED, True, chosen.row)
    assert (await task(store, "t1-again")).rerun_of == "t1"
    original = await task(store, "taken")
    assert taken == Submitted("taken", S.ENQUEUED, False, original.row)
    assert original.rerun_of is None


async def test_rerun_of_an_unfinished_task_is_refused(store: Store) -> None:
    await running(store)

    with pytest.raises(TransitionRefused) as refused:
        await store.rerun(TENANT, "t1", "t1-again", T0 + 10, 3, 0)

    assert refused.value.extra == {"task_id": "t1", "status": "Running"}
    assert await store.get_task(TENANT, "t1-again") is None
    assert await store.rerun(TENANT, "nope", None, T0 + 10, 3, 0) is None


# -- retention ---------------------------------------------------------------------------------


async def test_purge_finished_deletes_old_terminal_tasks_with_their_children(
    store: Store,
) -> None:
    await submit(store, "old", "recent", "running")
    old, recent, _ = await claim(store)
    await store.append_logs([NewLogLine(old.row, T0 + 1, "stdout", "bye")])
    await store.finish([Finish(old.row, 1, S.SUCCEEDED, T0 + 2, result=1)])
    await store.finish([Finish(recent.row, 1, S.SUCCEEDED, T0 + 20, result=1)])
    await submit(store, "queued", now=T0 + 3)

    assert await store.purge_finished(finished_before=T0 + 10, limit=10) == 1

    assert await store.get_task(TENANT, "old") is None
    assert await store.read_logs(TENANT, "old") is None
    for task_id in ("recent", "running", "queued"):
        assert await store.get_task(TENANT, task_id) is not None


async def test_purge_finished_children_are_gone_from_the_file(
    store: Store, store_kind: str, tmp_path: Path
) -> None:
    if store_kind != "sqlite":
        pytest.skip("reads the SQLite file with raw SQL; PostgreSQL cascades the same way")
    claimed = await running(store)
    await store.append_logs([NewLogLine(claimed.row, T0 + 1, "stdout", "hi")])
    await store.finish([Finish(claimed.row, 1, S.SUCCEEDED, T0 + 2)])

    assert await store.purge_finished(T0 + 10, 10) == 1

    with contextlib.closing(sqlite3.connect(tmp_path / "asyncfn.db")) as conn:
        for table in ("tasks", "task_events", "attempts", "task_logs"):
            (count,) = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
            assert count == 0, table


async def test_purge_finished_is_bounded_oldest_first(store: Store) -> None:
    for i in range(4):
        await submit(store, f"t{i}", now=T0 + i)
        await stop(store, f"t{i}", now=T0 + 10 - i)  # t3 finished first

    assert await store.purge_finished(T0 + 100, limit=2) == 2
    left = [t for t in ("t0", "t1", "t2", "t3") if await store.get_task(TENANT, t) is not None]
    assert left == ["t0", "t1"]
    assert await store.purge_finished(T0 + 100, limit=0) == 0


# -- paused functions --------------------------------------------------------------------------


async def test_set_function_paused_round_trips_and_put_function_keeps_it(store: Store) -> None:
    await store.put_function(FunctionSpec(name=FN, tenant=TENANT, handler="app:h"))
    fresh = await store.get_function(TENANT, FN)
    assert fresh is not None and fresh.paused is False

    paused = await store.set_function_paused(TENANT, FN, True, T0 + 5)

    assert paused is not None and paused.paused and paused.handler == "app:h"
    got = await store.get_function(TENANT, FN)
    assert got is not None and got.paused
    assert [f.paused for f in await store.list_functions(TENANT)] == [True]
    # The config's `paused` is ignored on put: the column is the truth.
    await store.put_function(FunctionSpec(name=FN, tenant=TENANT, handler="app:g", paused=False))
    kept = await store.get_function(TENANT, FN)
    assert kept is not None and (kept.paused, kept.handler) == (True, "app:g")

    unpaused = await store.set_function_paused(TENANT, FN, False, T0 + 6)
    assert unpaused is not None and not unpaused.paused
    await store.put_function(FunctionSpec(name="new", tenant=TENANT, paused=True))
    new = await store.get_function(TENANT, "new")
    assert new is not None and not new.paused
    assert await store.set_function_paused(TENANT, "nope", True, T0) is None


# -- migrations --------------------------------------------------------------------------------


async def test_migration_0002_applies_on_top_of_a_version_1_database(
    store_kind: str, tmp_path: Path
) -> None:
    if store_kind != "sqlite":
        pytest.skip("builds a version-1 SQLite file by hand")
    path = tmp_path / "v1.db"
    first = [m for m in discover(files("asyncfn.store.sqlite") / "migrations") if m.version == 1]
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        migrate_sqlite(conn, first, T0)
        conn.execute(
            "INSERT INTO functions (tenant, name, config, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (TENANT, FN, '{"handler": "app:h"}', T0, T0),
        )
        conn.execute(
            "INSERT INTO tasks (id, tenant, function, status, max_attempts, payload, created_at,"
            " run_at) VALUES ('t1', ?, ?, 'Enqueued', 3, x'00', ?, ?)",
            (TENANT, FN, T0, T0),
        )

    upgraded = SqliteStore(path)
    await upgraded.open()
    try:
        spec = await upgraded.get_function(TENANT, FN)
        assert spec is not None and (spec.handler, spec.paused) == ("app:h", False)
        old = await upgraded.get_task(TENANT, "t1")
        assert old is not None and old.rerun_of is None
        assert [c.id for c in await claim(upgraded)] == ["t1"]
    finally:
        await upgraded.close()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        versions = conn.execute("SELECT version FROM schema_migrations ORDER BY version")
        applied = [v for (v,) in versions]
    migrations = discover(files("asyncfn.store.sqlite").joinpath("migrations"))
    assert applied[:2] == [1, 2] and applied == [m.version for m in migrations]
