"""Request models (the OpenAPI): function config with the accepted ranges of `domain.limits`."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from asyncfn.domain import limits
from asyncfn.domain.errors import InvalidInput
from asyncfn.domain.keying import check_expression
from asyncfn.domain.models import (
    DEFAULT_TENANT,
    AsyncPolicy,
    ConcurrencyLimit,
    Debounce,
    FunctionSpec,
    RetryBackoff,
    Throttle,
)
from asyncfn.domain.placement import check_labels
from asyncfn.domain.schedules import Schedule
from asyncfn.domain.secrets import REDACTED
from asyncfn.domain.states import TERMINAL, TaskStatus
from asyncfn.domain.triggers import MAX_QUEUE_DEPTH, MAX_QUEUE_DEPTH_DEFAULT, TRIGGER_TYPES, Trigger


class RetryBackoffIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_s: float = Field(limits.RETRY_BASE_S_DEFAULT, gt=0, le=3_600)
    max_s: float = Field(limits.RETRY_MAX_S_DEFAULT, gt=0, le=86_400)


class DestinationIn(BaseModel):
    """`async.on_success` / `async.on_failure`: `{"type": "http", "url", "secret"}` or
    `{"type": "function", "function"}`, each with optional terminal `statuses`. Every field is
    checked on its own, so an error names it (`async.on_success.url`)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["http", "function"]
    url: str | None = Field(None, validate_default=True, max_length=2_048)
    secret: str | None = Field(
        None,
        validate_default=True,
        max_length=256,
        description=f"signs each delivery; shown as {REDACTED!r}, and {REDACTED!r} given back"
        " keeps the stored secret",
    )
    function: str | None = Field(None, validate_default=True)
    statuses: list[TaskStatus] | None = Field(None, min_length=1)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if _needed(info, "http", value, "url"):
            parts = urlsplit(value or "")
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("an http destination needs an http:// or https:// URL")
        return value

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: str | None, info: ValidationInfo) -> str | None:
        if _needed(info, "http", value, "secret") and not value:
            raise ValueError("an http destination needs a secret to sign deliveries with")
        return value

    @field_validator("function")
    @classmethod
    def _function(cls, value: str | None, info: ValidationInfo) -> str | None:
        if _needed(info, "function", value, "function") and not limits.NAME_RE.match(value or ""):
            raise ValueError("a function destination needs the name of a function")
        return value

    @field_validator("statuses")
    @classmethod
    def _terminal(cls, value: list[TaskStatus] | None) -> list[TaskStatus] | None:
        if value is not None and any(s not in TERMINAL for s in value):
            raise ValueError(f"statuses must be terminal: {', '.join(sorted(TERMINAL))}")
        return None if value is None else list(dict.fromkeys(value))

    def to_config(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


def _needed(info: ValidationInfo, kind: str, value: Any, field: str) -> bool:
    """Whether a destination of the validated type uses `field`; a field of the other type
    given anyway is an error."""
    wanted = info.data.get("type") == kind
    if not wanted and value is not None:
        raise ValueError(f"{field} does not apply to a {info.data.get('type')} destination")
    return wanted


class DeadLetterIn(BaseModel):
    """`async.on_dead_letter`: tasks that end Failed or Expired after all their retries are
    listed at `GET /v1/dead-letters`; `{"type": "list"}` keeps them only there, an `http` or
    `function` destination (as in `on_failure`) also gets each one's record."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["list", "http", "function"]
    url: str | None = Field(None, max_length=2_048)
    secret: str | None = Field(None, max_length=256)
    function: str | None = None

    def to_config(self) -> dict[str, Any]:
        """The stored config; InvalidInput naming the field for a destination that is not one."""
        if self.type == "list":
            for name in ("url", "secret", "function"):
                if getattr(self, name) is not None:
                    raise InvalidInput(
                        f"{name} does not apply to a list dead letter",
                        field=f"async.on_dead_letter.{name}",
                    )
            return {"type": "list"}
        try:
            given = self.model_dump(exclude_none=True)
            destination = DestinationIn(**given)
        except ValueError as exc:
            raise InvalidInput(_first_error(exc), field="async.on_dead_letter") from exc
        return destination.to_config()


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return f"{where}: {first.get('msg', '')}" if where else str(first.get("msg", ""))
    return str(exc)


class ConcurrencyLimitIn(BaseModel):
    """One limit of `concurrency`: at most `limit` running tasks per value of `key`."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(
        description="a JSON pointer into the payload (/customer_id), tenant, or header:<Name>"
    )
    limit: int = Field(ge=limits.KEY_LIMIT[0], le=limits.KEY_LIMIT[1])
    strategy: Literal["queue", "cancel_newest", "cancel_oldest"] = Field(
        "queue",
        description="a task whose key is at its limit: waits (keys take turns), ends Stopped"
        " (cancel_newest), or stops the oldest running task of that key (cancel_oldest)",
    )


class DebounceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(description="as a concurrency key")
    window_s: float = Field(gt=0, le=limits.DEBOUNCE_S_MAX)
    max_wait_s: float = Field(gt=0, le=limits.DEBOUNCE_S_MAX)


class ThrottleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(description="as a concurrency key")
    per_s: float = Field(ge=limits.RATE_LIMIT[0], le=limits.RATE_LIMIT[1])
    burst: int = Field(1, ge=limits.RATE_BURST[0], le=limits.RATE_BURST[1])


class AsyncPolicyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_retries: int = Field(
        limits.MAX_RETRIES_DEFAULT, ge=limits.MAX_RETRIES[0], le=limits.MAX_RETRIES[1]
    )
    retry_backoff: RetryBackoffIn = Field(default_factory=RetryBackoffIn)
    max_event_age_s: int = Field(
        limits.MAX_EVENT_AGE_S_DEFAULT, ge=limits.MAX_EVENT_AGE_S[0], le=limits.MAX_EVENT_AGE_S[1]
    )
    on_success: DestinationIn | None = None
    on_failure: DestinationIn | None = None
    on_dead_letter: DeadLetterIn | None = None


class FunctionIn(BaseModel):
    """A function's config as `PUT /v1/functions/{name}` takes it."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    runtime: Literal["python", "command"] = "python"
    handler: str | None = Field(
        None,
        pattern=limits.HANDLER_RE.pattern,
        description="module:function, for the python runtime",
    )
    command: list[str] | None = Field(
        None, min_length=1, max_length=256, description="argv run per task, for the command runtime"
    )
    timeout_s: int = Field(limits.TIMEOUT_S_DEFAULT, ge=limits.TIMEOUT_S[0], le=limits.TIMEOUT_S[1])
    memory_mb: int = Field(limits.MEMORY_MB_DEFAULT, ge=limits.MEMORY_MB[0], le=limits.MEMORY_MB[1])
    instance_concurrency: int = Field(
        1, ge=limits.INSTANCE_CONCURRENCY[0], le=limits.INSTANCE_CONCURRENCY[1]
    )
    min_instances: int = Field(0, ge=limits.MIN_INSTANCES[0], le=limits.MIN_INSTANCES[1])
    max_instances: int = Field(
        limits.MAX_INSTANCES_DEFAULT, ge=limits.MAX_INSTANCES[0], le=limits.MAX_INSTANCES[1]
    )
    max_concurrency: int | None = Field(
        None,
        ge=limits.MAX_CONCURRENCY[0],
        le=limits.MAX_CONCURRENCY[1],
        description="running tasks across the cluster; null: only the instance pools bound it",
    )
    rate_limit: float | None = Field(
        None,
        ge=limits.RATE_LIMIT[0],
        le=limits.RATE_LIMIT[1],
        description="dispatches per second across the cluster (a token bucket); null: none",
    )
    rate_burst: int | None = Field(
        None,
        ge=limits.RATE_BURST[0],
        le=limits.RATE_BURST[1],
        description="dispatches allowed at once under rate_limit; null: one second's worth",
    )
    async_: AsyncPolicyIn = Field(default_factory=AsyncPolicyIn, alias="async")
    env: dict[str, str] = Field(
        default_factory=dict,
        description="variables of the function's instances. Values are secrets: answers show"
        f" each as {REDACTED!r}, never the value. A value given as {REDACTED!r} keeps the one"
        " stored for that name (so a config read with GET can be PUT back unchanged); a name"
        " left out is removed.",
    )
    priority: int = Field(0, ge=limits.PRIORITY[0], le=limits.PRIORITY[1])
    stop_grace_s: float = Field(limits.STOP_GRACE_S_DEFAULT, ge=0, le=300)
    retain_payload: bool = Field(
        True,
        description="false: purge each task's payload, result, checkpoint and logs as soon as "
        "it has ended and its destinations are delivered (its state history stays)",
    )
    requires: dict[str, str] = Field(
        default_factory=dict,
        description="placement: labels (a node's `--label k=v`) a node must hold, with these"
        " values, to run the function's tasks; none: any node. Tasks wait Enqueued while no"
        " live node matches (stats show `placement.placeable` false)",
    )

    concurrency: list[ConcurrencyLimitIn] = Field(
        default_factory=list,
        max_length=limits.KEY_LIMITS_MAX,
        description="up to 3 limits on running tasks per key value, held across the cluster",
    )
    debounce: DebounceIn | None = Field(
        None,
        description="tasks with the same key within window_s collapse into the latest, run at"
        " most max_wait_s after the first",
    )
    throttle: ThrottleIn | None = Field(
        None, description="per key, at most per_s starts a second; the rest wait, in order"
    )

    @field_validator("command")
    @classmethod
    def _command_words(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value[0]:
            raise ValueError("the program (first word) must not be empty")
        return value

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not key or "=" in key or "\0" in key:
                raise ValueError(f"invalid variable name {key!r}")
        return value

    @field_validator("requires")
    @classmethod
    def _requires_labels(cls, value: dict[str, str]) -> dict[str, str]:
        return check_labels(value, "requires")

    def to_spec(self, name: str, tenant: str = DEFAULT_TENANT) -> FunctionSpec:
        """The domain spec; InvalidInput naming the field when fields disagree."""
        if self.runtime == "python" and self.handler is None:
            raise InvalidInput(
                "the python runtime needs a handler such as main:handler", field="handler"
            )
        if self.runtime == "command" and self.command is None:
            raise InvalidInput("the command runtime needs an argv list", field="command")
        if self.min_instances > self.max_instances:
            raise InvalidInput("min_instances must not exceed max_instances", field="min_instances")
        if self.rate_burst is not None and self.rate_limit is None:
            raise InvalidInput("rate_burst needs a rate_limit", field="rate_burst")
        for i, limit in enumerate(self.concurrency):
            check_expression(limit.key, f"concurrency.{i}.key")
        if self.debounce is not None:
            check_expression(self.debounce.key, "debounce.key")
            if self.debounce.max_wait_s < self.debounce.window_s:
                raise InvalidInput(
                    "max_wait_s must be at least window_s", field="debounce.max_wait_s"
                )
        if self.throttle is not None:
            check_expression(self.throttle.key, "throttle.key")
        policy = self.async_
        return FunctionSpec(
            name=name,
            tenant=tenant,
            runtime=self.runtime,
            handler=self.handler,
            command=tuple(self.command) if self.command is not None else None,
            timeout_s=self.timeout_s,
            memory_mb=self.memory_mb,
            instance_concurrency=self.instance_concurrency,
            min_instances=self.min_instances,
            max_instances=self.max_instances,
            max_concurrency=self.max_concurrency,
            rate_limit=self.rate_limit,
            rate_burst=self.rate_burst,
            async_policy=AsyncPolicy(
                max_retries=policy.max_retries,
                retry_backoff=RetryBackoff(policy.retry_backoff.base_s, policy.retry_backoff.max_s),
                max_event_age_s=policy.max_event_age_s,
                on_success=policy.on_success.to_config() if policy.on_success else None,
                on_failure=policy.on_failure.to_config() if policy.on_failure else None,
                on_dead_letter=(
                    policy.on_dead_letter.to_config() if policy.on_dead_letter else None
                ),
            ),
            env=dict(self.env),
            priority=self.priority,
            stop_grace_s=self.stop_grace_s,
            retain_payload=self.retain_payload,
            requires=dict(self.requires),
            concurrency=tuple(
                ConcurrencyLimit(c.key, c.limit, c.strategy) for c in self.concurrency
            ),
            debounce=(
                Debounce(self.debounce.key, self.debounce.window_s, self.debounce.max_wait_s)
                if self.debounce
                else None
            ),
            throttle=(
                Throttle(self.throttle.key, self.throttle.per_s, self.throttle.burst)
                if self.throttle
                else None
            ),
        )


class BatchItemIn(BaseModel):
    """One item of `invocations:batch` (a bare JSON value is taken as the payload)."""

    model_config = ConfigDict(extra="forbid")

    payload: Any = None
    task_id: str | None = Field(None, pattern=limits.TASK_ID_RE.pattern)
    delay_s: float | None = Field(None, ge=0, le=limits.DELAY_S_MAX)
    run_at: str | None = None
    priority: int | None = Field(None, ge=limits.PRIORITY[0], le=limits.PRIORITY[1])


def payload_bytes(value: Any) -> bytes:
    """A payload given as JSON: a string as its UTF-8 bytes, any other value as its JSON."""
    return value.encode() if isinstance(value, str) else orjson.dumps(value)


class ScheduleIn(BaseModel):
    """A schedule's config as `PUT /v1/schedules/{name}` takes it: exactly one of `cron` and
    `every_s`."""

    model_config = ConfigDict(extra="forbid")

    function: str = Field(min_length=1, max_length=64)
    cron: str | None = Field(None, description="a cron expression, read in `timezone`")
    every_s: int | None = Field(None, ge=1, description="or a fixed interval in seconds")
    payload: Any = Field("", description="a string is sent as its UTF-8 bytes, else as JSON")
    timezone: str = Field("UTC", description="an IANA time zone name")
    enabled: bool = True
    catch_up: Literal["none", "latest", "all"] = Field(
        "none", description="ticks missed while no node ran: skip, fire the latest, fire all"
    )

    def to_schedule(self, name: str, tenant: str = DEFAULT_TENANT) -> Schedule:
        return Schedule(
            name=name,
            function=self.function,
            tenant=tenant,
            cron=self.cron,
            every_s=self.every_s,
            timezone=self.timezone,
            payload=payload_bytes(self.payload),
            enabled=self.enabled,
            catch_up=self.catch_up,
        )


class TriggerIn(BaseModel):
    """A trigger's config as `PUT /v1/triggers/{name}` takes it: `function`, `type`, `enabled`,
    `max_queue_depth`, and beside them the source type's own settings (`stream`, `queue`,
    `path`, ...), checked by the source of that type."""

    model_config = ConfigDict(extra="allow")

    function: str = Field(min_length=1, max_length=64)
    type: Literal["nats", "redis-stream", "amqp", "directory"] = Field(
        description="the event source: " + ", ".join(TRIGGER_TYPES)
    )
    enabled: bool = True
    max_queue_depth: int = Field(
        MAX_QUEUE_DEPTH_DEFAULT,
        ge=MAX_QUEUE_DEPTH[0],
        le=MAX_QUEUE_DEPTH[1],
        description="stop pulling while the function has this many tasks waiting",
    )

    def to_trigger(self, name: str, tenant: str = DEFAULT_TENANT) -> Trigger:
        return Trigger(
            name=name,
            function=self.function,
            type=self.type,
            tenant=tenant,
            settings=dict(self.model_extra or {}),
            enabled=self.enabled,
            max_queue_depth=self.max_queue_depth,
        )
