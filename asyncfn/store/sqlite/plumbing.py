"""What `SqliteStore`'s facade mixins (`Sqlite*Store`, one per area module) need of it: its
writer and its readers. The mixins hold an area's Store methods so the store's module does not
grow; `SqliteStore` inherits them and implements these."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class SqlitePlumbing:
    async def _write(self, op: Callable[[sqlite3.Connection], T]) -> T:
        raise NotImplementedError  # SqliteStore's

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        raise NotImplementedError  # SqliteStore's
