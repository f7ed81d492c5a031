"""Columns ⇄ domain records for the PostgreSQL store, and the few cursor helpers every module
uses. Columns read back as SQLite's do (JSON as text, times as floats, bytes as bytes), so the
record converters are SQLite's, shared rather than copied."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from psycopg import AsyncConnection

from asyncfn.store.sqlite.outbox import delivery_from_row, new_delivery_id
from asyncfn.store.sqlite.rows import (
    attempt_from_row,
    claimed_from_row,
    event_from_row,
    function_config,
    function_from_row,
    json_text,
    json_value,
    lost_from_row,
    task_from_row,
)
from asyncfn.store.sqlite.schedules import schedule_from_row
from asyncfn.store.sqlite.triggers import trigger_from_row

__all__ = [
    "Conn",
    "Params",
    "attempt_from_row",
    "claimed_from_row",
    "delivery_from_row",
    "event_from_row",
    "execute",
    "fetch_all",
    "fetch_one",
    "function_config",
    "function_from_row",
    "json_text",
    "json_value",
    "lost_from_row",
    "new_delivery_id",
    "schedule_from_row",
    "task_from_row",
    "trigger_from_row",
]

Row = tuple[Any, ...]
Conn = AsyncConnection[Row]
Params = Mapping[str, Any]


async def fetch_all(
    conn: Conn, sql: str, params: Params | None = None, *, prepare: bool | None = None
) -> list[Row]:
    """`prepare` as psycopg's (None: prepared once the connection has run it 5 times)."""
    cursor = await conn.execute(sql, params, prepare=prepare)
    return await cursor.fetchall()


async def fetch_one(conn: Conn, sql: str, params: Params | None = None) -> Row | None:
    cursor = await conn.execute(sql, params)
    return await cursor.fetchone()


async def execute(conn: Conn, sql: str, params: Params | None = None) -> int:
    """Run a statement; answers how many rows it changed."""
    cursor = await conn.execute(sql, params)
    return cursor.rowcount
