"""The PostgreSQL store's submission of a debounced or throttled function (store/shaping.py holds
the arithmetic), in one transaction that holds its debounce keys (advisory locks) and its
throttle rows locked, so two nodes submitting the same key take turns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from asyncfn.domain.models import Submission, Submitted
from asyncfn.domain.states import TaskStatus
from asyncfn.store.postgres.rows import Conn, execute, fetch_all, json_text
from asyncfn.store.postgres.writes import PgWrites
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
from asyncfn.store.sqlite.writes import new_task_ids
from asyncfn.store.taskkeys import key_arrays, key_columns

S = TaskStatus


class PgShaping:
    """Shaped submission over the named statements `q`; events go through `writes`."""

    def __init__(self, q: Mapping[str, str], writes: PgWrites) -> None:
        self.q = q
        self._writes = writes

    async def submit_many(
        self,
        conn: Conn,
        tenant: str,
        function: str,
        submissions: Sequence[Submission],
        now: float,
        max_attempts: int,
        default_priority: int,
        shaping: Shaping,
    ) -> list[Submitted]:
        """In a transaction: as `PgWrites.submit_many`, with each new task's run_at from
        `shaping` and the waiting tasks it supersedes Stopped. A taken id answers its task and
        shapes nothing."""
        scope = {"tenant": tenant, "function": function}
        generated = iter(new_task_ids(sum(s.task_id is None for s in submissions), now))
        ids = [next(generated) if s.task_id is None else s.task_id for s in submissions]
        dkeys = debounce_keys(shaping, submissions)
        if dkeys:
            await execute(conn, self.q["lock_debounce_keys"], {**scope, "keys": dkeys})
        given = sorted({s.task_id for s in submissions if s.task_id is not None})
        held: dict[str, Submitted] = {}
        if given:
            key = {"tenant": tenant, "ids": given}
            for task_id, row, status in await fetch_all(conn, self.q["tasks_row_status"], key):
                held[task_id] = Submitted(task_id, TaskStatus(status), False, row)
        fresh = fresh_items(ids, held)
        pending = await self._pending(conn, scope, dkeys)
        tkeys = throttle_keys(shaping, [s for s, f in zip(submissions, fresh, strict=True) if f])
        tats: dict[str, float] = {}
        if tkeys:
            params = {**scope, "keys": tkeys, "now": now}
            tats = dict(await fetch_all(conn, self.q["throttle_tats"], params))
        shaped = plan(shaping, submissions, ids, fresh, now, pending, tats)

        news = [i for i, f in enumerate(fresh) if f]
        items = [submissions[i] for i in news]
        params = {
            "ids": [ids[i] for i in news],
            "priorities": [default_priority if s.priority is None else s.priority for s in items],
            "payloads": [s.payload for s in items],
            "run_ats": [shaped.run_ats[i] for i in news],
            "details": [json_text(shaped.details[i]) for i in news],
            "attributes": [json_text(s.attributes) for s in items],
            **key_arrays([key_columns(s.keys) for s in items]),
            **scope,
            "now": now,
            "max_attempts": max_attempts,
        }
        inserted = await fetch_all(conn, self.q["insert_task"], params) if news else []
        position = {ids[i]: i for i in news}
        for task_id, row, is_new, status in inserted:
            if row is not None:
                run_at = shaped.run_ats[position[task_id]] if is_new else None
                held[task_id] = Submitted(task_id, TaskStatus(status), is_new, row, run_at)
        missing = [ids[i] for i in news if ids[i] not in held]
        if missing:  # committed by another node after the insert's snapshot: read them now
            key = {"tenant": tenant, "ids": missing}
            for task_id, row, status in await fetch_all(conn, self.q["tasks_row_status"], key):
                held[task_id] = Submitted(task_id, TaskStatus(status), False, row)

        created: list[tuple[int, str] | None] = []
        answers: list[Submitted] = []
        for i, task_id in enumerate(ids):
            answer = held[task_id]
            new = fresh[i] and answer.created and answer.row is not None
            created.append((answer.row, task_id) if new and answer.row is not None else None)
            answers.append(answer if new else Submitted(task_id, answer.status, False, answer.row))
        await self._set_first_ats(conn, shaped.first_ats, created)
        if shaped.tats:
            keys = sorted(shaped.tats)
            params = {**scope, "keys": keys, "tats": [shaped.tats[k] for k in keys]}
            await execute(conn, self.q["save_throttle_tat"], params)
        await self._stop(conn, supersessions(shaping, submissions, created, pending), now)
        return answers

    async def _pending(
        self, conn: Conn, scope: dict[str, str], keys: list[str]
    ) -> dict[str, list[Pending]]:
        found: dict[str, list[Pending]] = {}
        if keys:
            params = {**scope, "keys": keys}
            for key, row, task_id, first_at, run_at in await fetch_all(
                conn, self.q["debounce_pending"], params
            ):
                found.setdefault(key, []).append(Pending(row, task_id, first_at, run_at))
        return found

    async def _set_first_ats(
        self,
        conn: Conn,
        first_ats: Sequence[float | None],
        created: Sequence[tuple[int, str] | None],
    ) -> None:
        """Each new debounced task keeps when its run of collapsed submissions began."""
        rows: list[int] = []
        ats: list[float] = []
        for new, first_at in zip(created, first_ats, strict=True):
            if new is not None and first_at is not None:
                rows.append(new[0])
                ats.append(first_at)
        if rows:
            params = {"rows": rows, "first_ats": ats}
            await execute(conn, self.q["set_debounce_first_at"], params)

    async def _stop(self, conn: Conn, stops: list[tuple[int, str]], now: float) -> None:
        """The waiting task of each (row, superseded_by) → Stopped, as a user's stop of a waiting
        task, without deliveries: it did not fail, the task that superseded it carries on. The
        rows are locked (debounce_pending) or this transaction's own, so each guard holds."""
        if not stops:
            return
        async with conn.cursor() as cursor:
            await cursor.executemany(
                self.q["stop_waiting_task"],
                [
                    {"row": row, "source": S.ENQUEUED.value, "attempt": 0, "now": now}
                    for row, _ in stops
                ],
            )
        events = [(row, now, S.STOPPED.value, json_text(stopped_detail(by))) for row, by in stops]
        await self._writes.append_events(conn, events)
