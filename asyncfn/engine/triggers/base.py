"""The Trigger interface. A `Source` pulls messages from its broker or folder and hands each
batch to a `Sink`, which commits them as tasks (the message id makes the task id, so a
redelivery changes nothing); the source acknowledges a batch only after `commit` returned.

A crash between commit and acknowledgement therefore ends in a redelivery that finds its task
already there: nothing lost, nothing duplicated.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from asyncfn.domain.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class Message:
    """One message to become one task. `id` is unique within the source for the message's whole
    life (redeliveries keep it); `payload` is what the handler gets as its event."""

    id: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class SourceContext:
    """Who consumes: the trigger, its tenant and function, and this node (a consumer's name
    within a group)."""

    trigger: str
    tenant: str
    function: str
    node: str


class Sink(Protocol):
    """Where a source puts what it pulled."""

    async def room(self) -> None:
        """Return when the function may take more tasks; waits while its queue is at the
        trigger's `max_queue_depth` (back-pressure: pull no more until then)."""

    async def commit(self, messages: Sequence[Message]) -> None:
        """Commit `messages` as tasks in one transaction and return once it is durable. A
        message whose task exists already counts as a duplicate and changes nothing. Raises
        when nothing could be committed (unknown function, store down): do not acknowledge."""

    def report_lag(self, pending: int | None) -> None:
        """How many messages wait in the source beyond what it has pulled (None: unknown)."""


class Source(Protocol):
    """One running consumer of a trigger."""

    async def run(self, sink: Sink) -> None:
        """Consume until cancelled; release the connection on the way out. Raise on an error
        it cannot ride out: the runner records it as the trigger's last error and starts a
        new source after a backoff."""


class SourceSettings(BaseModel):
    """Base of each source type's settings: unknown keys are refused, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True, slots=True)
class SourceKind:
    """A source type: its `name` (a `Trigger.type`), its settings model, and how to make one from
    settings of that model."""

    name: str
    settings: type[SourceSettings]
    make: Callable[[Any, SourceContext], Source]


def parse_settings(kind: type[SourceSettings], raw: Mapping[str, Any]) -> SourceSettings:
    """The settings of a source type from JSON; InvalidInput naming `settings.<key>`."""
    try:
        return kind.model_validate(dict(raw))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        field = f"settings.{where}" if where else "settings"
        raise InvalidInput(f"{field}: {first['msg']}", field=field) from exc
