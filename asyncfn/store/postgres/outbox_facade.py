"""`PostgresStore`'s outbox and dead-letter methods (deliveries: outbox.py; dead letters:
deadletters.py; the terminal transitions write both). Kept apart from outbox.py because the
transitions' modules (writes, control) import it, and this mixin names them."""

from __future__ import annotations

from collections.abc import Awaitable

from asyncfn.domain.deadletters import DeadLetter, DeadLetterCursor
from asyncfn.domain.models import Delivery, Submitted
from asyncfn.store.postgres.control import PgControl
from asyncfn.store.postgres.plumbing import PgPlumbing
from asyncfn.store.postgres.rows import Conn
from asyncfn.store.postgres.writes import PgWrites


class PgOutboxStore(PgPlumbing):
    """`PostgresStore`'s outbox and dead-letter methods (the Store protocol's), kept here so the
    store's module does not grow."""

    _writes: PgWrites
    _control: PgControl

    # -- outbox -------------------------------------------------------------------------------
    async def claim_deliveries(
        self, node: str, now: float, lease_until: float, limit: int
    ) -> list[Delivery]:
        if limit <= 0:
            return []
        return await self._run(
            lambda c: self._writes.outbox.claim(c, node, now, lease_until, limit)
        )

    async def delivery_done(self, delivery_id: str, attempt: int, now: float) -> bool:
        return await self._run(lambda c: self._writes.outbox.done(c, delivery_id, attempt, now))

    async def delivery_failed(
        self, delivery_id: str, attempt: int, now: float, error: str, next_at: float | None
    ) -> bool:
        op = self._writes.outbox.failed
        return await self._run(lambda c: op(c, delivery_id, attempt, error, next_at))

    async def task_deliveries(self, tenant: str, task_id: str) -> list[Delivery] | None:
        return await self._snapshot(lambda c: self._writes.outbox.of_task(c, tenant, task_id))

    # -- dead letters (postgres/deadletters.py; the outbox's enqueue writes them) -------------
    async def list_dead_letters(
        self,
        tenant: str,
        function: str | None,
        limit: int,
        after: DeadLetterCursor | None = None,
    ) -> tuple[list[DeadLetter], DeadLetterCursor | None]:
        dead_letters = self._writes.outbox.dead_letters
        return await self._run(lambda c: dead_letters.listed(c, tenant, function, limit, after))

    async def rerun_dead_letter(
        self,
        tenant: str,
        task_id: str,
        new_task_id: str | None,
        now: float,
        max_attempts: int,
        default_priority: int,
    ) -> Submitted | None:
        def make(conn: Conn) -> Awaitable[Submitted | None]:
            return self._control.rerun(
                conn, tenant, task_id, new_task_id, now, max_attempts, default_priority
            )

        dead_letters = self._writes.outbox.dead_letters
        return await self._run(lambda c: dead_letters.rerun(c, tenant, task_id, now, make), True)
