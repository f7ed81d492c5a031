"""The source types by `Trigger.type`, each imported when first used (a node that runs no
broker trigger never loads that broker's client), and the check of a trigger's settings."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from asyncfn.domain.errors import InvalidInput
from asyncfn.domain.triggers import TRIGGER_TYPES
from asyncfn.engine.triggers.base import SourceKind, SourceSettings, parse_settings

MODULES = {
    "nats": "asyncfn.engine.triggers.nats",
    "redis-stream": "asyncfn.engine.triggers.redis_stream",
    "amqp": "asyncfn.engine.triggers.amqp",
    "directory": "asyncfn.engine.triggers.directory",
}
assert tuple(MODULES) == TRIGGER_TYPES


def kind(type_: str) -> SourceKind:
    """The source type named `type_`; InvalidInput (field `type`) when there is none."""
    module = MODULES.get(type_)
    if module is None:
        raise InvalidInput(f"type is one of {', '.join(TRIGGER_TYPES)}", field="type")
    found: SourceKind = importlib.import_module(module).KIND
    return found


def settings_of(type_: str, raw: Mapping[str, Any]) -> SourceSettings:
    """The settings of a trigger of type `type_`, validated; InvalidInput naming the field."""
    return parse_settings(kind(type_).settings, raw)


def normalised(type_: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    """What to store of `raw`: the keys the user gave, validated and in JSON form (defaults
    are left out, so they follow the platform's)."""
    return settings_of(type_, raw).model_dump(mode="json", exclude_unset=True)
