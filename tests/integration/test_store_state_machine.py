"""A Hypothesis state machine driving a real SQLite store through random sequences of task
transitions, checking the task state machine's promises after every step.

Rules: submit (some delayed, some reusing ids), claim, finish (Succeeded, Failed, and Stopped,
which only a Stopping task may take), retry later, promote, stop, suspend, resume, expire,
release a lost suspended attempt, rerun, and the clock moving on. `finish`, `retry_later` and
`release_lost` name the task's current attempt or, sometimes, an older one (a late answer of a
previous attempt), which the store must refuse.

Invariants, read back with `get_task` after each step:
- the status is a TaskStatus and the last event's status is it;
- a terminal task never changes again, and its events hold exactly one terminal event, the last;
- its attempt number never decreases;
- the first event is Enqueued and every next event is a move TRANSITIONS allows (an event that
  repeats Suspended is the annotation `release_lost` writes, not a move);
and at the end every task still open can be driven to a terminal status through the store.

Each example runs on a fresh SQLite file with its own event loop; times are a logical clock.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Coroutine
from itertools import pairwise
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from asyncfn.domain.errors import TransitionRefused
from asyncfn.domain.models import Submission, Task
from asyncfn.domain.states import TERMINAL, TRANSITIONS, TaskStatus
from asyncfn.store import open_store
from asyncfn.store.base import Finish, RetryLater, Store

pytestmark = pytest.mark.timeout(180)

S = TaskStatus
T0 = 1_700_000_000.0
TENANT = "acme"
FN = "resize"
NODE = "node-a"
LEASE_S = 30.0
MAX_ATTEMPTS = 3
IDS = [f"t{i}" for i in range(6)]
"""Client-given ids: few enough that submissions and reruns often reuse one."""
T = TypeVar("T")

OPEN = frozenset(TaskStatus) - TERMINAL
LIVE = frozenset({S.RUNNING, S.STOPPING, S.SUSPENDED})
"""Where an attempt may be live (a Suspended task only when it was suspended running)."""

ids = st.sampled_from(IDS)
attempt_offsets = st.sampled_from([0, 0, 0, 1])
"""Usually the live attempt; sometimes the one before it (a late answer)."""


class StoreStateMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="asyncfn-sm-"))
        self.loop = asyncio.new_event_loop()
        self.store: Store = open_store(f"sqlite:///{self.dir / 'asyncfn.db'}")
        self.now = T0
        self.known: list[str] = []
        """Every task id the store gave or took, in order."""
        self.seen: dict[str, Task] = {}
        """Each task as the last invariant check read it."""

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def task(self, task_id: str) -> Task:
        found = self.run(self.store.get_task(TENANT, task_id))
        assert found is not None, f"task {task_id} vanished"
        return found

    def learn(self, task_id: str) -> None:
        if task_id not in self.known:
            self.known.append(task_id)

    def pick(self, data: st.DataObject, prefer: frozenset[TaskStatus] | set[TaskStatus]) -> str:
        """A known task: mostly one whose status (at the last check) is in `prefer`, so that
        rules mostly act where they can, and sometimes any task, so that guards are tried."""
        fitting = [t for t in self.known if self.seen[t].status in prefer]
        anyone = data.draw(st.sampled_from([False, False, False, True]), label="stray")
        return data.draw(st.sampled_from(self.known if anyone or not fitting else fitting))

    def attempt_of(self, task_id: str, offset: int) -> tuple[int, int]:
        found = self.task(task_id)
        return found.row, found.attempt - offset

    # -- rules -----------------------------------------------------------------------------
    @initialize(running=st.integers(0, 4))
    def open(self, running: int) -> None:
        """Start with four due tasks, some of them claimed, so that rules find work at once."""
        self.run(self.store.open())
        first = [Submission(task_id.encode(), task_id) for task_id in IDS[:4]]
        self.run(self.store.submit_many(TENANT, FN, first, self.now, MAX_ATTEMPTS, 0))
        self.known += IDS[:4]
        self.run(self.store.claim_ready(TENANT, FN, NODE, running, self.now, self.now + LEASE_S))

    @rule(
        items=st.lists(
            st.tuples(ids, st.sampled_from([None, None, 0.0, 5.0, 60.0])), min_size=1, max_size=3
        )
    )
    def submit_many(self, items: list[tuple[str, float | None]]) -> None:
        submissions = [
            Submission(task_id.encode(), task_id, self.now + delay if delay is not None else None)
            for task_id, delay in items
        ]
        before = {task_id: self.seen.get(task_id) for task_id, _ in items}
        results = self.run(
            self.store.submit_many(TENANT, FN, submissions, self.now, MAX_ATTEMPTS, 0)
        )
        assert [r.task_id for r in results] == [task_id for task_id, _ in items]
        for result in results:
            existed = before[result.task_id] is not None
            if existed:
                assert not result.created, f"{result.task_id} was created twice"
            self.learn(result.task_id)

    @rule(limit=st.integers(1, 4))
    def claim_ready(self, limit: int) -> None:
        claimed = self.run(
            self.store.claim_ready(TENANT, FN, NODE, limit, self.now, self.now + LEASE_S)
        )
        assert len(claimed) <= limit
        for one in claimed:
            assert self.seen[one.id].status == S.ENQUEUED, one.id
            assert one.attempt == self.seen[one.id].attempt + 1, one.id

    @precondition(lambda self: self.seen)
    @rule(
        data=st.data(),
        status=st.sampled_from([S.SUCCEEDED, S.FAILED, S.STOPPED]),
        offset=attempt_offsets,
    )
    def finish(self, data: st.DataObject, status: TaskStatus, offset: int) -> None:
        task_id = self.pick(data, LIVE)
        row, attempt = self.attempt_of(task_id, offset)
        finish = Finish(row, attempt, status, self.now, result={"ok": True}, duration_ms=1.0)
        (done,) = self.run(self.store.finish([finish]))
        if done:
            assert self.task(task_id).status == status

    @precondition(lambda self: self.seen)
    @rule(data=st.data(), delay=st.sampled_from([0.0, 1.0, 30.0]), offset=attempt_offsets)
    def retry_later(self, data: st.DataObject, delay: float, offset: int) -> None:
        task_id = self.pick(data, LIVE)
        row, attempt = self.attempt_of(task_id, offset)
        error = {"type": "Boom", "message": "retry me"}
        retry = RetryLater(row, attempt, self.now, self.now + delay, error)
        (done,) = self.run(self.store.retry_later([retry]))
        if done:
            assert self.task(task_id).status == S.RETRYING

    @rule(limit=st.integers(1, 4))
    def promote_due(self, limit: int) -> None:
        promoted = self.run(self.store.promote_due(self.now, limit))
        assert len(promoted) <= limit
        assert all(key == (TENANT, FN) for key in promoted)

    def control(self, task_id: str, action: str) -> None:
        before = self.task(task_id).status
        call = getattr(self.store, action)
        ctl = self.run(call(TENANT, task_id, self.now, {"by": "test"}))
        assert ctl is not None
        assert ctl.previous == before
        after = self.task(task_id).status
        assert ctl.status == after, f"{action} answered {ctl.status}, the task is {after}"
        assert ctl.changed == (before != after)

    @precondition(lambda self: self.seen)
    @rule(data=st.data())
    def stop(self, data: st.DataObject) -> None:
        self.control(self.pick(data, OPEN), "stop")

    @precondition(lambda self: self.seen)
    @rule(data=st.data())
    def suspend(self, data: st.DataObject) -> None:
        self.control(self.pick(data, OPEN), "suspend")

    @precondition(lambda self: self.seen)
    @rule(data=st.data())
    def resume(self, data: st.DataObject) -> None:
        self.control(self.pick(data, {S.SUSPENDED}), "resume")

    @rule(age=st.sampled_from([300.0, 3000.0]), limit=st.integers(1, 4))
    def expire(self, age: float, limit: int) -> None:
        count = self.run(self.store.expire(TENANT, FN, self.now - age, self.now, limit))
        assert 0 <= count <= limit

    @precondition(lambda self: self.seen)
    @rule(data=st.data(), offset=attempt_offsets)
    def release_lost(self, data: st.DataObject, offset: int) -> None:
        task_id = self.pick(data, {S.SUSPENDED})
        row, attempt = self.attempt_of(task_id, offset)
        before = self.task(task_id).status
        done = self.run(self.store.release_lost(row, attempt, self.now, {"reason": "NodeLost"}))
        if done:
            assert before == S.SUSPENDED
            assert self.task(task_id).status == S.SUSPENDED

    @precondition(lambda self: self.seen)
    @rule(data=st.data(), new_id=st.one_of(st.none(), ids))
    def rerun(self, data: st.DataObject, new_id: str | None) -> None:
        task_id = self.pick(data, TERMINAL)
        ended = self.task(task_id).status in TERMINAL
        try:
            submitted = self.run(
                self.store.rerun(TENANT, task_id, new_id, self.now, MAX_ATTEMPTS, 0)
            )
        except TransitionRefused:
            assert not ended, f"rerun of {task_id}, which ended, was refused"
            return
        assert ended, f"rerun of {task_id}, which had not ended, was accepted"
        assert submitted is not None
        if new_id is not None:
            assert submitted.task_id == new_id
        if submitted.created:
            assert self.task(submitted.task_id).rerun_of == task_id
        self.learn(submitted.task_id)

    @rule(dt=st.sampled_from([0.5, 5.0, 60.0]))
    def tick(self, dt: float) -> None:
        self.now += dt

    # -- invariants ------------------------------------------------------------------------
    @invariant()
    def tasks_keep_the_state_machine(self) -> None:
        for task_id in self.known:
            now = self.task(task_id)
            before = self.seen.get(task_id)
            check_task(now)
            if before is not None:
                if before.status in TERMINAL:
                    assert now.status == before.status, f"{task_id} left {before.status}"
                    assert now.events == before.events, f"{task_id} changed after it ended"
                assert now.attempt >= before.attempt, f"{task_id}: attempts went down"
                assert now.events[: len(before.events)] == before.events, "events rewritten"
            self.seen[task_id] = now

    def teardown(self) -> None:
        try:
            if self.known and not self.loop.is_closed():
                self.drive_all_to_an_end()
        finally:
            try:
                self.run(self.store.close())
            finally:
                self.loop.close()
                shutil.rmtree(self.dir, ignore_errors=True)

    def drive_all_to_an_end(self) -> None:
        """Every open task can still end: stop it, and finish the attempt of a Stopping one."""
        for task_id in self.known:
            if self.task(task_id).status in TERMINAL:
                continue
            ctl = self.run(self.store.stop(TENANT, task_id, self.now, {"by": "teardown"}))
            assert ctl is not None
            current = self.task(task_id)
            if current.status == S.STOPPING:
                finish = Finish(current.row, current.attempt, S.STOPPED, self.now)
                assert self.run(self.store.finish([finish])) == [True], task_id
                current = self.task(task_id)
            assert current.status in TERMINAL, f"{task_id} is stuck {current.status}"
            check_task(current)


def check_task(task: Task) -> None:
    assert isinstance(task.status, TaskStatus)
    statuses = [S(event.status) for event in task.events]  # each a TaskStatus value
    assert statuses, f"{task.id} has no events"
    assert statuses[0] == S.ENQUEUED, f"{task.id} began {statuses[0]}"
    assert statuses[-1] == task.status, f"{task.id} is {task.status}, last event {statuses[-1]}"
    for before, after in pairwise(statuses):
        annotation = before == after == S.SUSPENDED
        assert annotation or after in TRANSITIONS[before], (
            f"{task.id}: event {before} → {after} is not allowed: {statuses}"
        )
    ends = [i for i, status in enumerate(statuses) if status in TERMINAL]
    if task.status in TERMINAL:
        assert ends == [len(statuses) - 1], f"{task.id}: terminal events at {ends}: {statuses}"
    else:
        assert ends == [], f"{task.id} is {task.status} after ending: {statuses}"


StoreStateMachine.TestCase.settings = settings(
    max_examples=50,
    stateful_step_count=30,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    # no `explain`: on Python 3.11 it traces every line, which makes a failure take minutes
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
)
TestStoreStateMachine = StoreStateMachine.TestCase
