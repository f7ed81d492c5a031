"""The `Store` protocol by area, one Protocol per module; `asyncfn.store.base.Store` composes them.

functions.py    FunctionStore: functions' configs and code
transitions.py  TaskTransitions: submit, claim, finish, retry, control, expire, purge, logs
reads.py        TaskReads: tasks, logs, lost leases, next due, counts and stats
outbox.py       OutboxStore: destination deliveries and dead letters
schedules.py    ScheduleStore
triggers.py     TriggerStore
tenants.py      TenantStore: tenants, API keys, signing keys, shared secrets
nodes.py        NodeStore: node rows (placement)
operations.py   OperationStore: bulk operations
"""

from __future__ import annotations

from asyncfn.store.protocols.functions import FunctionStore
from asyncfn.store.protocols.nodes import NodeStore
from asyncfn.store.protocols.operations import OperationStore
from asyncfn.store.protocols.outbox import OutboxStore
from asyncfn.store.protocols.reads import TaskReads
from asyncfn.store.protocols.schedules import ScheduleStore
from asyncfn.store.protocols.tenants import TenantStore
from asyncfn.store.protocols.transitions import TaskTransitions
from asyncfn.store.protocols.triggers import TriggerStore

__all__ = [
    "FunctionStore",
    "NodeStore",
    "OperationStore",
    "OutboxStore",
    "ScheduleStore",
    "TaskReads",
    "TaskTransitions",
    "TenantStore",
    "TriggerStore",
]
