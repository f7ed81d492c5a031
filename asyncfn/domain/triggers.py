"""Triggers (event sources) as pure data: a trigger's config, the types there are, and the task
id a message becomes, so a redelivered message finds the task its first delivery made."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from asyncfn.domain import limits
from asyncfn.domain.errors import InvalidInput
from asyncfn.domain.models import DEFAULT_TENANT

TRIGGER_TYPES = ("nats", "redis-stream", "amqp", "directory")
MAX_QUEUE_DEPTH_DEFAULT = 10_000
"""A trigger stops pulling while its function has this many tasks waiting (back-pressure)."""
MAX_QUEUE_DEPTH = (1, 10_000_000)


@dataclass(frozen=True, slots=True)
class Trigger:
    """An event source feeding one function. `settings` are the source type's own (validated by
    the engine's source of that type); `max_queue_depth` is the back-pressure bound."""

    name: str
    function: str
    type: str
    tenant: str = DEFAULT_TENANT
    settings: Mapping[str, Any] = field(default_factory=dict)
    enabled: bool = True
    max_queue_depth: int = MAX_QUEUE_DEPTH_DEFAULT
    created_at: float = 0.0
    updated_at: float = 0.0


def validate(trigger: Trigger) -> None:
    """InvalidInput naming the field when the trigger's own fields are wrong (its settings are
    checked by the source of its type)."""
    if not limits.NAME_RE.match(trigger.name):
        raise InvalidInput(
            "a trigger name is 1 to 64 letters, digits, '-' or '_', starting with a letter",
            field="name",
        )
    if not limits.NAME_RE.match(trigger.function):
        raise InvalidInput("function is a function's name", field="function")
    if trigger.type not in TRIGGER_TYPES:
        raise InvalidInput(f"type is one of {', '.join(TRIGGER_TYPES)}", field="type")
    low, high = MAX_QUEUE_DEPTH
    if not low <= trigger.max_queue_depth <= high:
        raise InvalidInput(f"max_queue_depth is between {low} and {high}", field="max_queue_depth")


def task_id(trigger: str, message_id: str) -> str:
    """The id of the task a message becomes: `trigger.message_id` when that is a valid task id,
    else `trigger.` and a hash of the message id. Stable across redeliveries and restarts."""
    plain = f"{trigger}.{message_id}"
    if limits.TASK_ID_RE.match(plain):
        return plain
    digest = hashlib.sha256(message_id.encode("utf-8", "surrogatepass")).hexdigest()[:40]
    return f"{trigger}.h{digest}"
