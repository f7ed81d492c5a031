"""The `Store` protocol: one method per task transition, each guarded, plus the reads.

Every transition is one transaction that updates the task row and appends its event; a guard
miss is reported per item (False / absent), never silently applied. Times are POSIX seconds.

`Store` composes one Protocol per area (store/protocols/*.py); the records its methods take
and answer live in store/records.py. Both are re-exported here, the import path callers use.
"""

from __future__ import annotations

from typing import Protocol

from asyncfn.store.protocols import (
    FunctionStore,
    NodeStore,
    OperationStore,
    OutboxStore,
    ScheduleStore,
    TaskReads,
    TaskTransitions,
    TenantStore,
    TriggerStore,
)
from asyncfn.store.records import (
    PURGED_FIELDS,
    Control,
    Finish,
    LostTask,
    NewLogLine,
    PurgeResult,
    RetryLater,
)

__all__ = [
    "PURGED_FIELDS",
    "Control",
    "Finish",
    "FunctionStore",
    "LostTask",
    "NewLogLine",
    "NodeStore",
    "OperationStore",
    "OutboxStore",
    "PurgeResult",
    "RetryLater",
    "ScheduleStore",
    "Store",
    "TaskReads",
    "TaskTransitions",
    "TenantStore",
    "TriggerStore",
]


class Store(
    FunctionStore,
    TaskTransitions,
    TaskReads,
    OutboxStore,
    ScheduleStore,
    TriggerStore,
    TenantStore,
    NodeStore,
    OperationStore,
    Protocol,
):
    """What the engine and the API may ask of the shared state; each store implements it."""

    async def open(self) -> None:
        """Apply pending migrations and start serving; idempotent."""

    async def close(self) -> None:
        """Flush pending writes and release connections; idempotent."""
