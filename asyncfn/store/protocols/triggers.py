"""The store's triggers: their configs and the queue depth their sources read."""

from __future__ import annotations

from typing import Protocol

from asyncfn.domain.triggers import Trigger


class TriggerStore(Protocol):
    """Triggers' configs, and how deep a function's queue is."""

    async def put_trigger(self, trigger: Trigger) -> bool:
        """Create or replace a trigger's config (its `created_at` is kept); True when created."""

    async def get_trigger(self, tenant: str, name: str) -> Trigger | None: ...

    async def list_triggers(self, tenant: str | None = None) -> list[Trigger]:
        """The triggers of `tenant`, or of every tenant when None, by tenant then name."""

    async def delete_trigger(self, tenant: str, name: str) -> bool:
        """False when there was no such trigger. Tasks it submitted stay."""

    async def queue_depth(self, tenant: str, function: str) -> int:
        """How many tasks of a function wait (Enqueued or Retrying, due or not)."""
