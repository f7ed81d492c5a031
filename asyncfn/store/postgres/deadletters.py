"""The PostgreSQL store's dead letters: the entries that terminal transitions write (through the
outbox's `enqueue_sources`, in their transaction), the newest-first list, and a rerun marked on
its entry in the rerun's own transaction (the entry locked, so two reruns never both pass)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence

from asyncfn.domain.deadletters import AlreadyRerun, DeadLetter, DeadLetterCursor
from asyncfn.domain.models import Submitted
from asyncfn.store.postgres.rows import Conn, execute, fetch_all, fetch_one
from asyncfn.store.sqlite.deadletters import list_params, page


class PgDeadLetters:
    """Dead-letter ops over the named statements `q`."""

    def __init__(self, q: Mapping[str, str]) -> None:
        self.q = q

    async def record(self, conn: Conn, rows: Sequence[int], now: float) -> None:
        """List `rows` (tasks that just ended Failed or Expired), in the caller's transaction."""
        if rows:
            await execute(conn, self.q["insert_dead_letters"], {"rows": list(rows), "now": now})

    async def listed(
        self,
        conn: Conn,
        tenant: str,
        function: str | None,
        limit: int,
        after: DeadLetterCursor | None,
    ) -> tuple[list[DeadLetter], DeadLetterCursor | None]:
        name, params = list_params(tenant, function, limit, after)
        return page(await fetch_all(conn, self.q[name], params), limit)

    async def rerun(
        self,
        conn: Conn,
        tenant: str,
        task_id: str,
        now: float,
        make: Callable[[Conn], Awaitable[Submitted | None]],
    ) -> Submitted | None:
        """In a transaction: `make` the rerun (the control's rerun op) of the dead letter
        `task_id` and mark its entry with it. None when the task is no dead letter;
        AlreadyRerun when it was rerun."""
        key = {"tenant": tenant, "id": task_id}
        found = await fetch_one(conn, self.q["dead_letter_of_task"], key)
        if found is None:
            return None
        row, rerun_as = found
        if rerun_as is not None:
            raise AlreadyRerun(task_id, rerun_as)
        submitted = await make(conn)
        if submitted is not None and submitted.created:
            mark = {"row": row, "rerun_as": submitted.task_id, "now": now}
            await execute(conn, self.q["mark_dead_letter_rerun"], mark)
        return submitted
