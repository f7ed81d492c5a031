"""The secrets of a function's config (its `env` values, its webhooks' `secret`): how they are
shown (`REDACTED`, never the value) and how a config sent back with `REDACTED` keeps them."""

from __future__ import annotations

import dataclasses
from typing import Any

from asyncfn.domain.errors import InvalidInput
from asyncfn.domain.models import FunctionSpec

REDACTED = "(set)"
"""What the API shows in place of a secret. Given back in a PUT, it stands for the stored value,
so a config read with GET can be sent back unchanged without overwriting the secrets."""

DESTINATION_KEYS = ("on_success", "on_failure", "on_dead_letter")


def redact(config: dict[str, Any]) -> dict[str, Any]:
    """`FunctionSpec.to_config()` with every secret replaced by REDACTED (names kept)."""
    shown = dict(config)
    shown["env"] = dict.fromkeys(config.get("env") or {}, REDACTED)
    policy = dict(config.get("async") or {})
    for key in DESTINATION_KEYS:
        destination = policy.get(key)
        if destination and destination.get("secret") is not None:
            policy[key] = {**destination, "secret": REDACTED}
    shown["async"] = policy
    return shown


def keep_stored(new: FunctionSpec, old: FunctionSpec | None) -> FunctionSpec:
    """`new` with each REDACTED value replaced by the value `old` (the stored version) has at
    the same place; InvalidInput naming the field when there is none to keep."""
    env = dict(new.env)
    for name, value in env.items():
        if value == REDACTED:
            if old is None or name not in old.env:
                raise InvalidInput(
                    f"env {name} is {REDACTED!r}, which keeps a stored value, but {name} has"
                    " none: give its value",
                    field=f"env.{name}",
                )
            env[name] = old.env[name]
    kept: dict[str, Any] = {}
    for key in DESTINATION_KEYS:
        destination = getattr(new.async_policy, key)
        if not destination or destination.get("secret") != REDACTED:
            continue
        stored = getattr(old.async_policy, key) if old is not None else None
        if not stored or stored.get("type") != "http" or not stored.get("secret"):
            raise InvalidInput(
                f"async.{key}.secret is {REDACTED!r}, which keeps a stored secret, but there is"
                " none: give the secret",
                field=f"async.{key}.secret",
            )
        kept[key] = {**destination, "secret": stored["secret"]}
    if env == new.env and not kept:
        return new
    policy = dataclasses.replace(new.async_policy, **kept)
    return dataclasses.replace(new, env=env, async_policy=policy)
