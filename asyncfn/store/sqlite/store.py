"""SqliteStore: the `Store` on one SQLite file, for a single node.

Limits, honestly: one node per file (SQLite locks are per host, and a file on a network share
is not safe), and one writer: every write goes through one GroupCommitter thread, so writes
scale by batching (one fsync per batch), not by parallelism. Several processes may open the
same file (their writes then wait on each other's locks, up to the busy timeout), but only one
node should dispatch from it. For several nodes use PostgreSQL.

Durability: WAL mode with `synchronous=FULL`, so a write that answered survives power loss.
Reads run on read-only connections in a small thread pool and never wait for an fsync.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from importlib.resources import files
from pathlib import Path
from typing import Any, TypeVar

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
from asyncfn.store.group_commit import GroupCommitter
from asyncfn.store.migrate import discover, migrate_sqlite
from asyncfn.store.shaping import Shaping
from asyncfn.store.sql import load_queries
from asyncfn.store.sqlite.control import SqliteControl
from asyncfn.store.sqlite.flow import SqliteFlow
from asyncfn.store.sqlite.nodes import SqliteNodes, SqliteNodeStore
from asyncfn.store.sqlite.operations import SqliteOperations, SqliteOperationStore
from asyncfn.store.sqlite.outbox_facade import SqliteOutboxStore
from asyncfn.store.sqlite.reads import SqliteReads, SqliteReadStore
from asyncfn.store.sqlite.rows import function_from_row
from asyncfn.store.sqlite.schedules import SqliteSchedules, SqliteScheduleStore
from asyncfn.store.sqlite.shaping import SqliteShaping
from asyncfn.store.sqlite.submit import SqliteSubmits
from asyncfn.store.sqlite.tenants import SqliteTenants, SqliteTenantStore
from asyncfn.store.sqlite.triggers import SqliteTriggers, SqliteTriggerStore
from asyncfn.store.sqlite.upkeep import SqliteUpkeep
from asyncfn.store.sqlite.writes import SqliteWrites

T = TypeVar("T")
PACKAGE = "asyncfn.store.sqlite"


class SqliteStore(
    SqliteReadStore,
    SqliteOutboxStore,
    SqliteScheduleStore,
    SqliteTriggerStore,
    SqliteTenantStore,
    SqliteNodeStore,
    SqliteOperationStore,
):
    """The SQLite implementation of `asyncfn.store.base.Store`; see the module docstring."""

    def __init__(
        self,
        path: Path,
        *,
        readers: int = 3,
        max_batch: int = 2_000,
        inline: bool = False,
        busy_timeout_ms: int = 5_000,
    ) -> None:
        self.path = Path(path)
        self._busy_timeout_ms = busy_timeout_ms
        queries = load_queries(PACKAGE)
        self._writes = SqliteWrites(queries)
        self._submits = SqliteSubmits(queries)
        self._shaping = SqliteShaping(queries)
        self._flow = SqliteFlow(queries)
        self._control = SqliteControl(queries)
        self._upkeep = SqliteUpkeep(queries)
        self._reads = SqliteReads(queries)
        self._schedules = SqliteSchedules(queries, self._submits)
        self._triggers = SqliteTriggers(queries)
        self._tenants = SqliteTenants(queries)
        self._nodes = SqliteNodes(queries)
        self._operations = SqliteOperations(queries)
        self._writer = GroupCommitter(
            self._connect_writer, max_batch=max_batch, inline=inline, name="asyncfn-sqlite-writer"
        )
        self._reader_count = readers
        self._readers: ThreadPoolExecutor | None = None
        self._reader_local = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._reader_lock = threading.Lock()

    @property
    def committer(self) -> GroupCommitter:
        """The group committer (its `batches` and `ops` counters feed the stats)."""
        return self._writer

    # -- lifecycle -------------------------------------------------------------------------
    async def open(self) -> None:
        if self._readers is not None:
            return
        await asyncio.to_thread(self._prepare)
        await self._writer.start()
        self._readers = ThreadPoolExecutor(self._reader_count, "asyncfn-sqlite-reader")

    async def close(self) -> None:
        """Stop reading (in-flight reads finish), then flush queued writes and close."""
        readers, self._readers = self._readers, None
        if readers is not None:
            readers.shutdown(wait=True)
        with self._reader_lock:
            conns, self._reader_conns = self._reader_conns, []
        for conn in conns:
            conn.close()
        await self._writer.stop()

    def _prepare(self) -> None:
        """Create the file, switch it to WAL and apply pending migrations."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = self._connect_writer()
        try:
            migrations = discover(files(PACKAGE).joinpath("migrations"))
            migrate_sqlite(conn, migrations, time.time())
        finally:
            conn.close()

    def _connect_writer(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, cached_statements=256
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
            (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
            if mode.lower() != "wal":
                raise RuntimeError(f"{self.path}: SQLite refused WAL mode (got {mode!r})")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            # Freed bytes (a purged payload, deleted logs) are zeroed, not left in free space.
            conn.execute("PRAGMA secure_delete = ON")
        except BaseException:
            conn.close()
            raise
        return conn

    def _connect_reader(self) -> sqlite3.Connection:
        uri = f"{self.path.resolve().as_uri()}?mode=ro"
        conn = sqlite3.connect(
            uri, uri=True, isolation_level=None, check_same_thread=False, cached_statements=64
        )
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        return conn

    # -- plumbing --------------------------------------------------------------------------
    async def _write(self, op: Callable[[sqlite3.Connection], T]) -> T:
        return await self._writer.run(op)

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        readers = self._readers
        if readers is None:
            raise Unavailable("the store is not open")
        return await asyncio.get_running_loop().run_in_executor(readers, self._on_reader, fn)

    def _on_reader(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn: sqlite3.Connection | None = getattr(self._reader_local, "conn", None)
        if conn is None:
            conn = self._connect_reader()
            self._reader_local.conn = conn
            with self._reader_lock:
                self._reader_conns.append(conn)
        return fn(conn)

    # -- functions and code ----------------------------------------------------------------
    async def put_function(self, spec: FunctionSpec) -> bool:
        now = spec.updated_at or time.time()
        return await self._write(partial(self._writes.put_function, spec=spec, now=now))

    async def get_function(self, tenant: str, name: str) -> FunctionSpec | None:
        return await self._read(partial(self._reads.get_function, tenant=tenant, name=name))

    async def list_functions(self, tenant: str | None = None) -> list[FunctionSpec]:
        return await self._read(partial(self._reads.list_functions, tenant=tenant))

    async def delete_function(self, tenant: str, name: str, now: float) -> int | None:
        op = partial(self._writes.delete_function, tenant=tenant, name=name, now=now)
        return await self._write(op)

    async def put_code(self, data: bytes, now: float) -> str:
        sha256 = (await asyncio.to_thread(hashlib.sha256, data)).hexdigest()
        return await self._write(partial(self._writes.put_code, sha256=sha256, data=data, now=now))

    async def get_code(self, sha256: str) -> bytes | None:
        return await self._read(partial(self._reads.get_code, sha256=sha256))

    async def set_function_code(
        self, tenant: str, name: str, sha256: str, now: float
    ) -> FunctionSpec | None:
        op = partial(
            self._writes.set_function_code, tenant=tenant, name=name, sha256=sha256, now=now
        )
        row = await self._write(op)
        return None if row is None else function_from_row(row)

    async def set_function_paused(
        self, tenant: str, name: str, paused: bool, now: float
    ) -> FunctionSpec | None:
        op = partial(
            self._writes.set_function_paused, tenant=tenant, name=name, paused=paused, now=now
        )
        row = await self._write(op)
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
        if not submissions:
            return []
        if shaping is None:  # concurrent submissions to the function share one INSERT
            many = partial(
                self._submits.submit_merged,
                tenant=tenant,
                function=function,
                max_attempts=max_attempts,
                default_priority=default_priority,
            )
            key = ("submit", tenant, function, max_attempts, default_priority)
            return await self._writer.run_merged(key, (now, submissions), many)
        op = partial(
            self._shaping.submit_many,
            tenant=tenant,
            function=function,
            submissions=submissions,
            now=now,
            max_attempts=max_attempts,
            default_priority=default_priority,
            shaping=shaping,
        )
        return await self._write(op)

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
        if limit <= 0:
            return Claim()
        op = partial(
            self._flow.claim_ready,
            tenant=tenant,
            function=function,
            node=node,
            limit=limit,
            now=now,
            lease_until=lease_until,
            created_after=created_after,
            quota=quota,
        )
        return await self._write(op)

    async def finish(self, finishes: Sequence[Finish]) -> list[bool]:
        if not finishes:
            return []
        return await self._write(partial(self._writes.finish, finishes=finishes))

    async def retry_later(self, retries: Sequence[RetryLater]) -> list[bool]:
        if not retries:
            return []
        return await self._write(partial(self._writes.retry_later, retries=retries))

    async def promote_due(self, now: float, limit: int) -> list[tuple[str, str]]:
        return await self._write(partial(self._writes.promote_due, now=now, limit=limit))

    async def renew_leases(self, node: str, rows: Sequence[int], until: float) -> int:
        if not rows:
            return 0
        op = partial(self._writes.renew_leases, node=node, rows=rows, until=until)
        return await self._write(op)

    async def stop(
        self, tenant: str, task_id: str, now: float, detail: dict[str, Any] | None
    ) -> Control | None:
        op = partial(self._control.stop, tenant=tenant, task_id=task_id, now=now, detail=detail)
        return await self._write(op)

    async def suspend(
        self, tenant: str, task_id: str, now: float, detail: dict[str, Any] | None
    ) -> Control | None:
        op = partial(self._control.suspend, tenant=tenant, task_id=task_id, now=now, detail=detail)
        return await self._write(op)

    async def resume(
        self, tenant: str, task_id: str, now: float, detail: dict[str, Any] | None
    ) -> Control | None:
        op = partial(self._control.resume, tenant=tenant, task_id=task_id, now=now, detail=detail)
        return await self._write(op)

    async def rerun(
        self,
        tenant: str,
        task_id: str,
        new_task_id: str | None,
        now: float,
        max_attempts: int,
        default_priority: int,
    ) -> Submitted | None:
        op = partial(
            self._control.rerun,
            tenant=tenant,
            task_id=task_id,
            new_task_id=new_task_id,
            now=now,
            max_attempts=max_attempts,
            default_priority=default_priority,
        )
        return await self._write(op)

    async def expire(
        self, tenant: str, function: str, created_before: float, now: float, limit: int
    ) -> int:
        if limit <= 0:
            return 0
        op = partial(
            self._upkeep.expire,
            tenant=tenant,
            function=function,
            created_before=created_before,
            now=now,
            limit=limit,
        )
        return await self._write(op)

    async def release_lost(
        self, row: int, attempt: int, now: float, detail: dict[str, Any]
    ) -> bool:
        op = partial(self._upkeep.release_lost, row=row, attempt=attempt, now=now, detail=detail)
        return await self._write(op)

    async def purge_finished(self, finished_before: float, limit: int) -> int:
        if limit <= 0:
            return 0
        op = partial(self._upkeep.purge_finished, finished_before=finished_before, limit=limit)
        return await self._write(op)

    async def forget_throttles(self, before: float, limit: int) -> int:
        op = partial(self._upkeep.forget_throttles, before=before, limit=limit)
        return await self._write(op)

    async def purge_task(self, tenant: str, task_id: str, now: float) -> PurgeResult | None:
        op = partial(self._upkeep.purge_task, tenant=tenant, task_id=task_id, now=now)
        return await self._write(op)

    async def purge_unretained(self, tenant: str, function: str, now: float, limit: int) -> int:
        if limit <= 0:
            return 0
        op = partial(
            self._upkeep.purge_unretained, tenant=tenant, function=function, now=now, limit=limit
        )
        return await self._write(op)

    async def save_progress(
        self, row: int, attempt: int, fraction: float, message: str | None
    ) -> bool:
        op = partial(
            self._writes.save_progress, row=row, attempt=attempt, fraction=fraction, message=message
        )
        return await self._write(op)

    async def save_checkpoint(self, row: int, attempt: int, checkpoint: Any) -> bool:
        op = partial(self._writes.save_checkpoint, row=row, attempt=attempt, checkpoint=checkpoint)
        return await self._write(op)

    async def append_logs(self, lines: Sequence[NewLogLine]) -> None:
        if lines:
            await self._write(partial(self._writes.append_logs, lines=lines))
