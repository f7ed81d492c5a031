"""PostgresStore: the `Store` on one PostgreSQL database, shared by many nodes.

Safety across nodes: claims take rows with `FOR UPDATE SKIP LOCKED`, every transition is a
guarded statement (status, attempt, lease) on locked rows, and a task id is unique per tenant
(`ON CONFLICT DO NOTHING` answers the existing task). Transactions that make tasks due, control
a live attempt or change a function also `pg_notify` (delivered on commit; channels and
payloads in listen.py), and `listen` hears them: the `ClusterFeed` of store/feed.py.
Durability is the server's default (`synchronous_commit` on). Connections come from a psycopg
pool in autocommit mode: a one-statement transition is one round trip.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from psycopg_pool import AsyncConnectionPool

from asyncfn.domain.errors import Unavailable
from asyncfn.domain.flow import Claim, ClaimQuota
from asyncfn.domain.models import (
    FunctionSpec,
    Submission,
    Submitted,
)
from asyncfn.store.base import (
    Control,
    Finish,
    NewLogLine,
    PurgeResult,
    RetryLater,
)
from asyncfn.store.coalesce import Call, Coalescer, merged_calls, split_answers
from asyncfn.store.feed import FeedHandlers
from asyncfn.store.migrate import discover
from asyncfn.store.postgres.control import PgControl
from asyncfn.store.postgres.flow import PgFlow
from asyncfn.store.postgres.listen import PgListener
from asyncfn.store.postgres.nodes import PgNodes, PgNodeStore
from asyncfn.store.postgres.operations import PgOperations, PgOperationStore
from asyncfn.store.postgres.outbox_facade import PgOutboxStore
from asyncfn.store.postgres.reads import PgReads, PgReadStore
from asyncfn.store.postgres.rows import Conn, execute, function_from_row
from asyncfn.store.postgres.schedules import PgSchedules, PgScheduleStore
from asyncfn.store.postgres.schema import migrate_postgres
from asyncfn.store.postgres.shaping import PgShaping
from asyncfn.store.postgres.tenants import PgTenants, PgTenantStore
from asyncfn.store.postgres.triggers import PgTriggers, PgTriggerStore
from asyncfn.store.postgres.upkeep import PgUpkeep
from asyncfn.store.postgres.writes import PgWrites
from asyncfn.store.shaping import Shaping
from asyncfn.store.sql import load_queries

T = TypeVar("T")
PACKAGE = "asyncfn.store.postgres"


@dataclass(frozen=True, slots=True)
class PgSettings:
    """What a store URL says: the libpq conninfo and the pool's bounds."""

    conninfo: str
    pool_min: int = 2
    pool_max: int = 10


def settings_from_url(url: str) -> PgSettings:
    """`postgres://`, `postgresql://` or `postgresql+psycopg://` URLs; the query parameters
    `pool_min` and `pool_max` size the pool and are not passed on to libpq."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower().removesuffix("+psycopg")
    if scheme not in {"postgres", "postgresql"}:
        raise ValueError(f"{url!r} is not a PostgreSQL URL")
    query = parse_qsl(parts.query, keep_blank_values=True)
    pool = {k: int(v) for k, v in query if k in {"pool_min", "pool_max"}}
    rest = urlencode([(k, v) for k, v in query if k not in pool], quote_via=quote)
    conninfo = urlunsplit(("postgresql", parts.netloc, parts.path, rest, parts.fragment))
    return PgSettings(conninfo, pool.get("pool_min", 2), pool.get("pool_max", 10))


async def _configure(conn: Conn) -> None:
    """Every pooled connection runs without JIT: the store's statements are short, but once
    psycopg has prepared one, PostgreSQL's generic plan for it (array parameters of unknown
    length) can cost over `jit_above_cost`, and compiling every execution made a one-task
    insert take ~1.7 ms instead of ~0.7 ms."""
    await conn.execute("SET jit = off")


SubmitKey = tuple[str, str, int, int]
"""(tenant, function, max_attempts, default_priority): submissions merged together."""
MERGED_CALL_MAX = 16
"""Calls of more submissions than this are not merged with others (`Coalescer`)."""


class PostgresStore(
    PgReadStore,
    PgOutboxStore,
    PgScheduleStore,
    PgTriggerStore,
    PgTenantStore,
    PgNodeStore,
    PgOperationStore,
):
    """The PostgreSQL implementation of `asyncfn.store.base.Store`; see the module docstring."""

    def __init__(self, settings: PgSettings) -> None:
        self.settings = settings
        queries = load_queries(PACKAGE)
        self._queries = queries
        self._writes = PgWrites(queries)
        self._shaping = PgShaping(queries, self._writes)
        self._flow = PgFlow(queries, self._writes)
        self._control = PgControl(queries, self._writes)
        self._upkeep = PgUpkeep(queries, self._writes.outbox)
        self._reads = PgReads(queries, self._writes.outbox)
        self._schedules = PgSchedules(queries, self._writes)
        self._triggers = PgTriggers(queries)
        self._tenants = PgTenants(queries)
        self._nodes = PgNodes(queries)
        self._operations = PgOperations(queries)
        self._pool: AsyncConnectionPool[Conn] | None = None
        self._listeners: set[PgListener] = set()
        self._submits: Coalescer[SubmitKey, Call, list[Submitted]] = Coalescer(self._submit_calls)

    @classmethod
    def from_url(cls, url: str) -> PostgresStore:
        return cls(settings_from_url(url))

    # -- lifecycle -------------------------------------------------------------------------
    async def open(self) -> None:
        if self._pool is not None:
            return
        pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            self.settings.conninfo,
            min_size=self.settings.pool_min,
            max_size=self.settings.pool_max,
            kwargs={"autocommit": True},
            configure=_configure,
            open=False,
            name="asyncfn-postgres",
        )
        await pool.open(wait=True)
        try:
            async with pool.connection() as conn:
                migrations = discover(files(PACKAGE).joinpath("migrations"))
                await migrate_postgres(conn, migrations, time.time())
        except BaseException:
            await pool.close()
            raise
        self._pool = pool

    async def close(self) -> None:
        """Stop listening, then close the pool (in-flight operations finish first)."""
        await self._submits.close()
        listeners, self._listeners = self._listeners, set()
        for listener in listeners:
            await listener.close()
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    # -- plumbing --------------------------------------------------------------------------
    def _opened(self) -> AsyncConnectionPool[Conn]:
        if self._pool is None:
            raise Unavailable("the store is not open")
        return self._pool

    async def _run(self, op: Callable[[Conn], Awaitable[T]], tx: bool = False) -> T:
        """`op` on a pooled connection: alone (autocommit: one statement is its own
        transaction) or, with `tx`, in one transaction."""
        async with self._opened().connection() as conn:
            if not tx:
                return await op(conn)
            async with conn.transaction():
                return await op(conn)

    async def _snapshot(self, op: Callable[[Conn], Awaitable[T]]) -> T:
        """A read of several statements, in one read-only snapshot."""
        async with self._opened().connection() as conn, conn.transaction():
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            return await op(conn)

    # -- signals across nodes -------------------------------------------------------------
    async def listen(self, handlers: FeedHandlers) -> PgListener:
        """`ClusterFeed.listen`: one LISTEN connection (listen.py); `close()` stops it."""
        self._opened()
        listener = PgListener(self.settings.conninfo, handlers)
        await listener.start()
        self._listeners.add(listener)
        return listener

    async def wake(self, tenant: str, function: str) -> None:
        """`ClusterFeed.wake`: NOTIFY asyncfn_ready, as a submission of a due task does."""
        params = {"tenant": tenant, "function": function}
        await self._run(lambda c: execute(c, self._queries["notify_ready"], params))

    # -- functions and code ----------------------------------------------------------------
    async def put_function(self, spec: FunctionSpec) -> bool:
        now = spec.updated_at or time.time()
        return await self._run(lambda c: self._writes.put_function(c, spec, now), True)

    async def get_function(self, tenant: str, name: str) -> FunctionSpec | None:
        return await self._run(lambda c: self._reads.get_function(c, tenant, name))

    async def list_functions(self, tenant: str | None = None) -> list[FunctionSpec]:
        return await self._run(lambda c: self._reads.list_functions(c, tenant))

    async def delete_function(self, tenant: str, name: str, now: float) -> int | None:
        return await self._run(lambda c: self._writes.delete_function(c, tenant, name, now), True)

    async def put_code(self, data: bytes, now: float) -> str:
        sha256 = (await asyncio.to_thread(hashlib.sha256, data)).hexdigest()
        return await self._run(lambda c: self._writes.put_code(c, sha256, data, now))

    async def get_code(self, sha256: str) -> bytes | None:
        return await self._run(lambda c: self._reads.get_code(c, sha256))

    async def set_function_code(
        self, tenant: str, name: str, sha256: str, now: float
    ) -> FunctionSpec | None:
        row = await self._run(
            lambda c: self._writes.set_function_code(c, tenant, name, sha256, now), True
        )
        return None if row is None else function_from_row(row)

    async def set_function_paused(
        self, tenant: str, name: str, paused: bool, now: float
    ) -> FunctionSpec | None:
        row = await self._run(
            lambda c: self._writes.set_function_paused(c, tenant, name, paused, now), True
        )
        return None if row is None else function_from_row(row)

    # -- transitions -----------------------------------------------------------------------
    async def submit_many(
        self,
        tenant: str,
        function: str,
        submissions: Sequence[Submission],
        now: float,
        max_attempts: int,
        default_priority: int,
        *,
        shaping: Shaping | None = None,
    ) -> list[Submitted]:
        self._opened()
        if not submissions:
            return []
        if shaping is not None:
            return await self._run(
                lambda c: self._shaping.submit_many(
                    c, tenant, function, submissions, now, max_attempts, default_priority, shaping
                ),
                True,
            )
        key = (tenant, function, max_attempts, default_priority)
        if len(submissions) > MERGED_CALL_MAX:  # a batch already: at once, beside the others
            return (await self._submit_calls(key, [(now, submissions)]))[0]
        return await self._submits.run(key, (now, submissions))

    async def _submit_calls(self, key: SubmitKey, calls: list[Call]) -> list[list[Submitted]]:
        """Concurrent callers' submissions of one function, as one statement (`Coalescer`)."""
        tenant, function, max_attempts, default_priority = key
        now, flat = merged_calls(calls)
        answers = await self._run(
            lambda c: self._writes.submit_many(
                c, tenant, function, flat, now, max_attempts, default_priority
            )
        )
        return split_answers(calls, answers)

    async def claim_ready(
        self,
        tenant: str,
        function: str,
        node: str,
        limit: int,
        now: float,
        lease_until: float,
        created_after: float = 0.0,
        quota: ClaimQuota | None = None,
    ) -> Claim:
        """Without a quota: one statement. Under one: one transaction, see flow.py."""
        if limit <= 0:
            return Claim()
        args = (tenant, function, node, limit, now, lease_until, created_after)
        if quota is None or quota.unlimited:
            return Claim(await self._run(lambda c: self._writes.claim_ready(c, *args)))
        return await self._run(lambda c: self._flow.claim(c, *args, quota), True)

    async def finish(self, finishes: Sequence[Finish]) -> list[bool]:
        if not finishes:
            return []
        return await self._run(lambda c: self._writes.finish(c, finishes), True)

    async def retry_later(self, retries: Sequence[RetryLater]) -> list[bool]:
        if not retries:
            return []
        return await self._run(lambda c: self._writes.retry_later(c, retries))

    async def promote_due(self, now: float, limit: int) -> list[tuple[str, str]]:
        return await self._run(lambda c: self._writes.promote_due(c, now, limit))

    async def renew_leases(self, node: str, rows: Sequence[int], until: float) -> int:
        if not rows:
            return 0
        return await self._run(lambda c: self._writes.renew_leases(c, node, rows, until))

    async def stop(
        self, tenant: str, task_id: str, now: float, detail: dict[str, Any] | None
    ) -> Control | None:
        return await self._run(lambda c: self._control.stop(c, tenant, task_id, now, detail), True)

    async def suspend(
        self, tenant: str, task_id: str, now: float, detail: dict[str, Any] | None
    ) -> Control | None:
        op = self._control.suspend
        return await self._run(lambda c: op(c, tenant, task_id, now, detail), True)

    async def resume(
        self, tenant: str, task_id: str, now: float, detail: dict[str, Any] | None
    ) -> Control | None:
        op = self._control.resume
        return await self._run(lambda c: op(c, tenant, task_id, now, detail), True)

    async def rerun(
        self,
        tenant: str,
        task_id: str,
        new_task_id: str | None,
        now: float,
        max_attempts: int,
        default_priority: int,
    ) -> Submitted | None:
        return await self._run(
            lambda c: self._control.rerun(
                c, tenant, task_id, new_task_id, now, max_attempts, default_priority
            ),
            True,
        )

    async def expire(
        self, tenant: str, function: str, created_before: float, now: float, limit: int
    ) -> int:
        if limit <= 0:
            return 0
        return await self._run(
            lambda c: self._upkeep.expire(c, tenant, function, created_before, now, limit), True
        )

    async def release_lost(
        self, row: int, attempt: int, now: float, detail: dict[str, Any]
    ) -> bool:
        return await self._run(lambda c: self._upkeep.release_lost(c, row, attempt, now, detail))

    async def purge_finished(self, finished_before: float, limit: int) -> int:
        if limit <= 0:
            return 0
        return await self._run(lambda c: self._upkeep.purge_finished(c, finished_before, limit))

    async def forget_throttles(self, before: float, limit: int) -> int:
        return await self._run(lambda c: self._upkeep.forget_throttles(c, before, limit))

    async def purge_task(self, tenant: str, task_id: str, now: float) -> PurgeResult | None:
        return await self._run(lambda c: self._upkeep.purge_task(c, tenant, task_id, now), True)

    async def purge_unretained(self, tenant: str, function: str, now: float, limit: int) -> int:
        if limit <= 0:
            return 0
        op = self._upkeep.purge_unretained
        return await self._run(lambda c: op(c, tenant, function, now, limit), True)

    async def save_progress(
        self, row: int, attempt: int, fraction: float, message: str | None
    ) -> bool:
        return await self._run(
            lambda c: self._writes.save_progress(c, row, attempt, fraction, message)
        )

    async def save_checkpoint(self, row: int, attempt: int, checkpoint: Any) -> bool:
        return await self._run(lambda c: self._writes.save_checkpoint(c, row, attempt, checkpoint))

    async def append_logs(self, lines: Sequence[NewLogLine]) -> None:
        if lines:
            await self._run(lambda c: self._writes.append_logs(c, lines), True)
