"""What `PostgresStore`'s facade mixins (`Pg*Store`, one per area module) need of it: its pooled
runs. The mixins hold an area's Store methods so the store's module does not grow;
`PostgresStore` inherits them and implements these."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from asyncfn.store.postgres.rows import Conn

T = TypeVar("T")


class PgPlumbing:
    async def _run(self, op: Callable[[Conn], Awaitable[T]], tx: bool = False) -> T:
        raise NotImplementedError  # PostgresStore's

    async def _snapshot(self, op: Callable[[Conn], Awaitable[T]]) -> T:
        raise NotImplementedError  # PostgresStore's
