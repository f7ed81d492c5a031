"""`SqliteStore`'s outbox and dead-letter methods (deliveries: outbox.py; dead letters:
deadletters.py; the terminal transitions write both). Kept apart from outbox.py because the
transitions' modules (writes, control) import it, and this mixin names them."""

from __future__ import annotations

from functools import partial

from asyncfn.domain.deadletters import DeadLetter, DeadLetterCursor
from asyncfn.domain.models import Delivery, Submitted
from asyncfn.store.sqlite.control import SqliteControl
from asyncfn.store.sqlite.plumbing import SqlitePlumbing
from asyncfn.store.sqlite.writes import SqliteWrites


class SqliteOutboxStore(SqlitePlumbing):
    """`SqliteStore`'s outbox and dead-letter methods (the Store protocol's), kept here so the
    store's module does not grow; they run on its writer and readers like the rest."""

    _writes: SqliteWrites
    _control: SqliteControl

    # -- outbox -------------------------------------------------------------------------------
    async def claim_deliveries(
        self, node: str, now: float, lease_until: float, limit: int
    ) -> list[Delivery]:
        if limit <= 0:
            return []
        op = partial(
            self._writes.outbox.claim, node=node, now=now, lease_until=lease_until, limit=limit
        )
        return await self._write(op)

    async def delivery_done(self, delivery_id: str, attempt: int, now: float) -> bool:
        op = partial(self._writes.outbox.done, delivery_id=delivery_id, attempt=attempt, now=now)
        return await self._write(op)

    async def delivery_failed(
        self, delivery_id: str, attempt: int, now: float, error: str, next_at: float | None
    ) -> bool:
        op = partial(
            self._writes.outbox.failed,
            delivery_id=delivery_id,
            attempt=attempt,
            error=error,
            next_at=next_at,
        )
        return await self._write(op)

    async def task_deliveries(self, tenant: str, task_id: str) -> list[Delivery] | None:
        fn = partial(self._writes.outbox.of_task, tenant=tenant, task_id=task_id)
        return await self._read(fn)

    # -- dead letters (store/sqlite/deadletters.py; the outbox's enqueue writes them) ---------
    async def list_dead_letters(
        self,
        tenant: str,
        function: str | None,
        limit: int,
        after: DeadLetterCursor | None = None,
    ) -> tuple[list[DeadLetter], DeadLetterCursor | None]:
        listed = self._writes.outbox.dead_letters.listed
        fn = partial(listed, tenant=tenant, function=function, limit=limit, after=after)
        return await self._read(fn)

    async def rerun_dead_letter(
        self,
        tenant: str,
        task_id: str,
        new_task_id: str | None,
        now: float,
        max_attempts: int,
        default_priority: int,
    ) -> Submitted | None:
        make = partial(
            self._control.rerun,
            tenant=tenant,
            task_id=task_id,
            new_task_id=new_task_id,
            now=now,
            max_attempts=max_attempts,
            default_priority=default_priority,
        )
        dead_letters = self._writes.outbox.dead_letters
        op = partial(dead_letters.rerun, tenant=tenant, task_id=task_id, now=now, make=make)
        return await self._write(op)
