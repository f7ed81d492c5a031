"""The store's reads of tasks: one task, pages of tasks, logs, lost leases, what is due next, and
the counts and stats the metrics and the dashboard read."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from asyncfn.domain.keystats import KeyStats
from asyncfn.domain.models import ConcurrencyLimit, LogLine, Task, TaskQuery
from asyncfn.domain.states import TaskStatus
from asyncfn.domain.stats import RECENT_ENDED, FunctionStats, QueueStat
from asyncfn.store.records import LostTask


class TaskReads(Protocol):
    """Reads of tasks and their stats; none writes."""

    async def get_task(self, tenant: str, task_id: str) -> Task | None:
        """The task with its events, attempts and deliveries."""

    async def list_tasks(self, query: TaskQuery) -> tuple[list[Task], int | None]:
        """A page of tasks (without events), newest first, and the cursor of the next page."""

    async def read_logs(
        self, tenant: str, task_id: str, after: int = 0, limit: int = 10_000
    ) -> list[LogLine] | None:
        """Log lines of a task after sequence `after`; None when the task does not exist."""

    async def find_lost(self, node: str | None, now: float, limit: int) -> list[LostTask]:
        """Tasks holding a lease (Running, Stopping, Suspended while running) whose lease
        expired by `now`, plus, when `node` is given, every such task of `node` (used when a
        node restarts: its instances died with it). Each says its `status`."""

    async def next_run_at(self, tenant: str, function: str) -> float | None:
        """When the earliest Enqueued task of a function becomes due; None when none waits."""

    async def next_retry_at(self) -> float | None:
        """When the earliest Retrying task becomes due; None when none waits."""

    async def count_by_status(self, tenant: str, function: str) -> dict[TaskStatus, int]: ...

    async def queue_stats(self) -> list[QueueStat]:
        """Per (tenant, function) with waiting tasks: how many are Enqueued or Retrying (due or
        not) and the oldest one's `created_at`. Cheap enough to read on every metrics scrape."""

    async def running_counts(self) -> dict[tuple[str, str], int]:
        """Per (tenant, function) with any: its tasks holding an attempt (Running, Stopping,
        Suspended while running), on every node. As cheap as `queue_stats`."""

    async def function_stats(
        self, tenant: str, function: str, now: float, recent: int = RECENT_ENDED
    ) -> FunctionStats:
        """Counts by status (every status), and over the function's `recent` latest ended
        tasks: queue waits, attempt durations, end-to-end times, CPU summed over their attempts
        and the peak RSS; plus how many of its tasks ended in the minute before `now`."""

    async def key_stats(
        self, tenant: str, function: str, limits: Sequence[ConcurrencyLimit], top: int = 10
    ) -> list[KeyStats]:
        """Per limit of the function's `concurrency`, its `top` values with the most running
        plus waiting (Enqueued) tasks. Bounded: waiting tasks are counted over at most
        `domain.keystats.WAITING_SCAN` of the queue."""
