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

from asyncfn.domain.deadletters import DeadLetter, DeadLetterCursor
from asyncfn.domain.errors import Unavailable
from asyncfn.domain.flow import Claim, ClaimQuota
from asyncfn.domain.keystats import KeyStats
from asyncfn.domain.models import (
    ConcurrencyLimit,
    Delivery,
    FunctionSpec,
    LogLine,
    Submission,
    Submitted,
    Task,
    TaskQuery,
)
from asyncfn.domain.placement import NodeRecord
from asyncfn.domain.schedules import Schedule
from asyncfn.domain.states import TaskStatus
from asyncfn.domain.stats import RECENT_ENDED, FunctionStats, QueueStat
from asyncfn.domain.tenants import ApiKey, SigningKey, Tenant
from asyncfn.domain.triggers import Trigger
from asyncfn.store.base import (
    Control,
    Finish,
    LostTask,
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
from asyncfn.store.sqlite.nodes import SqliteNodes
from asyncfn.store.sqlite.operations import SqliteOperations, SqliteOperationStore
from asyncfn.store.sqlite.reads import SqliteReads
from asyncfn.store.sqlite.rows import function_from_row
from asyncfn.store.sqlite.schedules import SqliteSchedules
from asyncfn.store.sqlite.shaping import SqliteShaping
from asyncfn.store.sqlite.tenants import SqliteTenants
from asyncfn.store.sqlite.triggers import SqliteTriggers
from asyncfn.store.sqlite.upkeep import SqliteUpkeep
from asyncfn.store.sqlite.writes import SqliteWrites

T = TypeVar("T")
PACKAGE = "asyncfn.store.sqlite"


class SqliteStore(SqliteOperationStore):
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
        self._shaping = SqliteShaping(queries)
        self._flow = SqliteFlow(queries)
        self._control = SqliteControl(queries)
        self._upkeep = SqliteUpkeep(queries)
        self._reads = SqliteReads(queries)
        self._schedules = SqliteSchedules(queries, self._writes)
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
        submit = (
            self._writes.submit_many
            if shaping is None
            else partial(self._shaping.submit_many, shaping=shaping)
        )
        op = partial(
            submit,
            tenant=tenant,
            function=function,
            submissions=submissions,
            now=now,
            max_attempts=max_attempts,
            default_priority=default_priority,
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

    # -- outbox (store/sqlite/outbox.py; the terminal transitions write it) -------------------
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

    # -- reads -----------------------------------------------------------------------------
    async def get_task(self, tenant: str, task_id: str) -> Task | None:
        return await self._read(partial(self._reads.get_task, tenant=tenant, task_id=task_id))

    async def list_tasks(self, query: TaskQuery) -> tuple[list[Task], int | None]:
        return await self._read(partial(self._reads.list_tasks, query=query))

    async def read_logs(
        self, tenant: str, task_id: str, after: int = 0, limit: int = 10_000
    ) -> list[LogLine] | None:
        fn = partial(
            self._reads.read_logs, tenant=tenant, task_id=task_id, after=after, limit=limit
        )
        return await self._read(fn)

    async def find_lost(self, node: str | None, now: float, limit: int) -> list[LostTask]:
        return await self._read(partial(self._reads.find_lost, node=node, now=now, limit=limit))

    async def next_run_at(self, tenant: str, function: str) -> float | None:
        return await self._read(partial(self._reads.next_run_at, tenant=tenant, function=function))

    async def next_retry_at(self) -> float | None:
        return await self._read(self._reads.next_retry_at)

    async def count_by_status(self, tenant: str, function: str) -> dict[TaskStatus, int]:
        fn = partial(self._reads.count_by_status, tenant=tenant, function=function)
        return await self._read(fn)

    async def queue_stats(self) -> list[QueueStat]:
        return await self._read(self._reads.queue_stats)

    async def running_counts(self) -> dict[tuple[str, str], int]:
        return await self._read(self._flow.running_counts)

    async def function_stats(
        self, tenant: str, function: str, now: float, recent: int = RECENT_ENDED
    ) -> FunctionStats:
        fn = partial(
            self._reads.function_stats, tenant=tenant, function=function, now=now, recent=recent
        )
        return await self._read(fn)

    async def key_stats(
        self, tenant: str, function: str, limits: Sequence[ConcurrencyLimit], top: int = 10
    ) -> list[KeyStats]:
        keys = self._flow.keys
        fn = partial(keys.stats, tenant=tenant, function=function, limits=limits, top=top)
        return await self._read(fn)

    # -- schedules -------------------------------------------------------------------------
    async def put_schedule(self, schedule: Schedule) -> bool:
        now = schedule.updated_at or time.time()
        return await self._write(partial(self._schedules.put, schedule=schedule, now=now))

    async def get_schedule(self, tenant: str, name: str) -> Schedule | None:
        return await self._read(partial(self._schedules.get, tenant=tenant, name=name))

    async def list_schedules(self, tenant: str) -> list[Schedule]:
        return await self._read(partial(self._schedules.of_tenant, tenant=tenant))

    async def delete_schedule(self, tenant: str, name: str) -> bool:
        return await self._write(partial(self._schedules.delete, tenant=tenant, name=name))

    async def due_schedules(self, now: float, limit: int) -> list[Schedule]:
        return await self._read(partial(self._schedules.due, now=now, limit=limit))

    async def next_schedule_at(self) -> float | None:
        return await self._read(self._schedules.next_at)

    async def fire_schedule(
        self,
        tenant: str,
        name: str,
        tick: float,
        next_fire_at: float,
        submission: Submission,
        now: float,
        max_attempts: int,
        default_priority: int,
    ) -> Submitted | None:
        op = partial(
            self._schedules.fire,
            tenant=tenant,
            name=name,
            tick=tick,
            next_fire_at=next_fire_at,
            submission=submission,
            now=now,
            max_attempts=max_attempts,
            default_priority=default_priority,
        )
        return await self._write(op)

    async def skip_schedule(self, tenant: str, name: str, next_fire_at: float) -> bool:
        op = partial(self._schedules.skip, tenant=tenant, name=name, next_fire_at=next_fire_at)
        return await self._write(op)

    # -- triggers --------------------------------------------------------------------------
    async def put_trigger(self, trigger: Trigger) -> bool:
        now = trigger.updated_at or time.time()
        return await self._write(partial(self._triggers.put, trigger=trigger, now=now))

    async def get_trigger(self, tenant: str, name: str) -> Trigger | None:
        return await self._read(partial(self._triggers.get, tenant=tenant, name=name))

    async def list_triggers(self, tenant: str | None = None) -> list[Trigger]:
        return await self._read(partial(self._triggers.listed, tenant=tenant))

    async def delete_trigger(self, tenant: str, name: str) -> bool:
        return await self._write(partial(self._triggers.delete, tenant=tenant, name=name))

    async def queue_depth(self, tenant: str, function: str) -> int:
        op = partial(self._triggers.queue_depth, tenant=tenant, function=function)
        return await self._read(op)

    # -- tenants, API keys, secrets --------------------------------------------------------
    async def create_tenant(self, name: str, now: float) -> bool:
        return await self._write(partial(self._tenants.create_tenant, name=name, now=now))

    async def list_tenants(self) -> list[Tenant]:
        return await self._read(self._tenants.tenants)

    async def get_tenant(self, name: str) -> Tenant | None:
        return await self._read(partial(self._tenants.tenant, name=name))

    async def set_tenant_limits(
        self,
        name: str,
        max_running: int | None,
        submit_rate: float | None,
        submit_burst: int | None,
    ) -> Tenant | None:
        limits = (max_running, submit_rate, submit_burst)
        return await self._write(lambda c: self._tenants.set_limits(c, name, *limits))

    async def create_key(self, key: ApiKey) -> None:
        await self._write(partial(self._tenants.create_key, key=key))

    async def find_key(self, hash_: str) -> ApiKey | None:
        return await self._read(partial(self._tenants.find_key, hash_=hash_))

    async def list_keys(self, tenant: str | None = None) -> list[ApiKey]:
        return await self._read(partial(self._tenants.keys, tenant=tenant))

    async def revoke_key(self, key_id: str, now: float) -> bool | None:
        return await self._write(partial(self._tenants.revoke_key, key_id=key_id, now=now))

    async def count_active_keys(self) -> int:
        return await self._read(self._tenants.active_keys)

    async def create_signing_key(self, key: SigningKey) -> None:
        await self._write(partial(self._tenants.create_signing_key, key=key))

    async def find_signing_key(self, key_id: str) -> SigningKey | None:
        return await self._read(partial(self._tenants.find_signing_key, key_id=key_id))

    async def list_signing_keys(self, tenant: str | None = None) -> list[SigningKey]:
        return await self._read(partial(self._tenants.signing_keys, tenant=tenant))

    async def revoke_signing_key(self, key_id: str, now: float) -> bool | None:
        return await self._write(partial(self._tenants.revoke_signing_key, key_id=key_id, now=now))

    async def shared_secret(self, name: str, candidate: bytes, now: float) -> bytes:
        op = partial(self._tenants.secret, name=name, value=candidate, now=now)
        return await self._write(op)

    # -- nodes (placement) -------------------------------------------------------------------
    async def heartbeat_node(self, node: NodeRecord) -> None:
        await self._write(partial(self._nodes.heartbeat, node=node))

    async def forget_node(self, name: str) -> None:
        await self._write(partial(self._nodes.forget, name=name))

    async def live_nodes(self, since: float) -> list[NodeRecord]:
        return await self._read(partial(self._nodes.live, since=since))
