"""The `ClusterFeed` protocol: what a store shared by several nodes tells each of them when any
node commits (PostgreSQL's LISTEN/NOTIFY); a one-node store (SQLite) does not implement it.

    ready    tasks of a function became due          → wake that function's dispatchers
    control  a stop, suspend or resume of a live attempt → the node running it signals it
    catalog  a function was put, re-coded, paused or deleted → every node reloads it
    resync   the feed reconnected (signals were lost) → every node re-reads what it caches
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

ControlKind = Literal["stop", "suspend", "resume"]


@dataclass(frozen=True, slots=True)
class ControlSignal:
    """A committed control transition of a task whose attempt `attempt` runs on `node`: stop
    (the task is Stopping: end the attempt), suspend (freeze it) or resume (thaw it)."""

    kind: ControlKind
    row: int
    attempt: int
    node: str
    tenant: str
    function: str


class FeedHandlers(Protocol):
    """What a feed calls from its listener, in commit order; each call must return quickly
    (queue the work) and whatever one raises is logged, never stops the listener."""

    def on_ready(self, tenant: str, function: str) -> None: ...

    def on_control(self, signal: ControlSignal) -> None: ...

    def on_catalog(self, tenant: str, name: str) -> None: ...

    def on_resync(self) -> None:
        """The feed reconnected: signals committed while it was down are lost, so re-read the
        store for whatever they would have said."""


class Listening(Protocol):
    """A running listener; `close()` stops it (closing the store stops it too)."""

    async def close(self) -> None: ...


@runtime_checkable
class ClusterFeed(Protocol):
    async def listen(self, handlers: FeedHandlers) -> Listening:
        """Start calling `handlers` for every signal any node's commit sends, until closed;
        returns once listening (a signal committed after that is heard)."""

    async def wake(self, tenant: str, function: str) -> None:
        """Tell every node (this one too) to claim the function's tasks again: a task under a
        cluster-wide cap ended, so its slot is free for whichever node claims first."""
