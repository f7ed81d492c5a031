"""The busiest values of a function's concurrency keys, as `GET /v1/functions/{name}/stats`
shows them: per limit, the values with the most running plus waiting tasks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from asyncfn.domain.models import ConcurrencyLimit

BUSIEST_SHOWN = 10
WAITING_SCAN = 50_000
"""Waiting tasks a stats read counts at most per key (the busiest list stays cheap with a deep
queue; past it, `waiting` counts only the tasks scanned)."""


@dataclass(frozen=True, slots=True)
class KeyValueStat:
    value: str
    running: int
    waiting: int


@dataclass(frozen=True, slots=True)
class KeyStats:
    """One limit of `FunctionSpec.concurrency` and its busiest values."""

    limit: ConcurrencyLimit
    busiest: tuple[KeyValueStat, ...]


def busiest(
    running: Mapping[str, int], waiting: Mapping[str, int], top: int = BUSIEST_SHOWN
) -> tuple[KeyValueStat, ...]:
    """The `top` values with the most running plus waiting tasks (ties: most running, then by
    value)."""
    values = set(running) | set(waiting)
    stats = [KeyValueStat(v, running.get(v, 0), waiting.get(v, 0)) for v in values]
    stats.sort(key=lambda s: (-(s.running + s.waiting), -s.running, s.value))
    return tuple(stats[:top])
