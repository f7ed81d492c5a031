"""The cloud APIs' async invoke configs as views of a function's one `async` policy: read from
and written to the FunctionSpec through the catalog (no second copy). `CloudAsyncConfig` is
what both clouds can say; each cloud module maps its own field names onto it."""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from asyncfn.api.deps import NodeServices
from asyncfn.domain import limits
from asyncfn.domain.allowlist import refused_destination
from asyncfn.domain.errors import InvalidInput
from asyncfn.domain.models import AsyncPolicy, FunctionSpec

LAMBDA_ARN_MARK = ":function:"


@dataclass(frozen=True, slots=True)
class CloudAsyncConfig:
    """An async config as a cloud states it: None for a field it leaves out (the policy's
    default then applies). Destinations are a function name or an http(s) URL."""

    max_retries: int | None = None
    max_event_age_s: int | None = None
    on_success: str | None = None
    on_failure: str | None = None


def destination_target(config: dict[str, Any] | None) -> str | None:
    """What a stored destination points at, as the clouds show it: the URL or function name."""
    if not config:
        return None
    target = config.get("url") if config.get("type") == "http" else config.get("function")
    return str(target) if target else None


def _destination(
    target: str | None, stored: dict[str, Any] | None, field: str
) -> dict[str, Any] | None:
    """A stored destination from a cloud's target. An http destination keeps its stored secret
    when the URL is unchanged, else gets a new random one (deliveries are always signed)."""
    if target is None or target == "":
        return None
    if target.startswith(("http://", "https://")):
        if not urlsplit(target).hostname:
            raise InvalidInput(f"not an http(s) URL: {target!r}", field=field)
        if stored and stored.get("type") == "http" and stored.get("url") == target:
            return dict(stored)
        return {"type": "http", "url": target, "secret": secrets.token_urlsafe(32)}
    name = target.rsplit(LAMBDA_ARN_MARK, 1)[-1] if LAMBDA_ARN_MARK in target else target
    name = name.split(":", 1)[0]  # an ARN may end in a qualifier
    if not limits.NAME_RE.match(name):
        raise InvalidInput(
            f"a destination is a function name or an http(s) URL, got {target!r}", field=field
        )
    return {"type": "function", "function": name}


def _in_range(value: int | None, low: int, high: int, field: str) -> None:
    if value is not None and not low <= value <= high:
        raise InvalidInput(f"{field} must be within {low}…{high}", field=field)


async def put_async_config(
    node: NodeServices,
    tenant: str,
    name: str,
    config: CloudAsyncConfig,
    *,
    fields: tuple[str, str, str, str],
) -> FunctionSpec:
    """Replace the function's async policy with `config` (left-out fields take the policy's
    defaults; the retry backoff is kept). `fields` names the cloud's fields for errors, in the
    order max_retries, max_event_age_s, on_success, on_failure. `on_dead_letter`, which no cloud
    has, is kept like the backoff."""
    spec = node.catalog.require(tenant, name)
    retries_f, age_f, success_f, failure_f = fields
    _in_range(config.max_retries, *limits.MAX_RETRIES, retries_f)
    _in_range(config.max_event_age_s, *limits.MAX_EVENT_AGE_S, age_f)
    old = spec.async_policy
    policy = AsyncPolicy(
        max_retries=(
            config.max_retries if config.max_retries is not None else limits.MAX_RETRIES_DEFAULT
        ),
        retry_backoff=old.retry_backoff,
        max_event_age_s=(
            config.max_event_age_s
            if config.max_event_age_s is not None
            else limits.MAX_EVENT_AGE_S_DEFAULT
        ),
        on_success=_destination(config.on_success, old.on_success, success_f),
        on_failure=_destination(config.on_failure, old.on_failure, failure_f),
        on_dead_letter=old.on_dead_letter,  # asyncfn's own, as the backoff: no cloud field
    )
    refused = refused_destination(
        {success_f: policy.on_success, failure_f: policy.on_failure},
        node.settings.webhook_allow_hosts,
    )
    if refused is not None:
        raise InvalidInput(refused[1], field=refused[0])
    stored, _ = await node.catalog.put(dataclasses.replace(spec, async_policy=policy))
    return stored


async def reset_async_config(node: NodeServices, tenant: str, name: str) -> FunctionSpec:
    """The cloud's delete: the function's async policy back to the defaults (the backoff and
    `on_dead_letter`, which the clouds do not have, are kept)."""
    spec = node.catalog.require(tenant, name)
    old = spec.async_policy
    policy = AsyncPolicy(retry_backoff=old.retry_backoff, on_dead_letter=old.on_dead_letter)
    stored, _ = await node.catalog.put(dataclasses.replace(spec, async_policy=policy))
    return stored
