"""The platform's records: functions, tasks, their events and attempts, as plain immutable data.

Times are POSIX seconds (float, UTC); the API renders them as RFC 3339. `result` and `error`
travel as JSON-ready values; payloads as bytes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from asyncfn.domain import limits
from asyncfn.domain.states import TaskStatus

Runtime = Literal["python", "command"]
ConcurrencyStrategy = Literal["queue", "cancel_newest", "cancel_oldest"]
DEFAULT_TENANT = "default"


@dataclass(frozen=True, slots=True)
class RetryBackoff:
    """Exponential backoff between attempts: base · 2^(attempt-1), capped, with full jitter."""

    base_s: float = limits.RETRY_BASE_S_DEFAULT
    max_s: float = limits.RETRY_MAX_S_DEFAULT


@dataclass(frozen=True, slots=True)
class AsyncPolicy:
    max_retries: int = limits.MAX_RETRIES_DEFAULT
    retry_backoff: RetryBackoff = field(default_factory=RetryBackoff)
    max_event_age_s: int = limits.MAX_EVENT_AGE_S_DEFAULT
    on_success: dict[str, Any] | None = None
    on_failure: dict[str, Any] | None = None
    on_dead_letter: dict[str, Any] | None = None
    """Where a task goes that ends Failed or Expired after all its retries (the dead-letter
    list, and a destination when the config names one); None: no dead letters are kept."""

    @property
    def max_attempts(self) -> int:
        return self.max_retries + 1


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a finished task's record goes: an HTTP webhook (`url`, signed with `secret`) or
    another function (`function`, chaining), for the terminal `statuses` it names."""

    type: Literal["http", "function"]
    statuses: tuple[TaskStatus, ...]
    url: str | None = None
    secret: str | None = None
    function: str | None = None
    dead_letter: bool = False
    """`async.on_dead_letter`'s destination: its record says `"dead_letter": true`."""

    @property
    def target(self) -> str:
        """What the destination points at: the URL or the function name (never the secret)."""
        return (self.url if self.type == "http" else self.function) or ""

    def to_config(self) -> dict[str, Any]:
        """The JSON-ready form the outbox keeps (secret included: the deliverer signs with it)."""
        config: dict[str, Any] = {"type": self.type, "statuses": [s.value for s in self.statuses]}
        for key in ("url", "secret", "function"):
            if getattr(self, key) is not None:
                config[key] = getattr(self, key)
        if self.dead_letter:
            config["dead_letter"] = True
        return config

    @classmethod
    def from_config(
        cls, config: dict[str, Any], default_statuses: tuple[TaskStatus, ...]
    ) -> Destination:
        """From `async.on_success` / `async.on_failure` (or the outbox's copy); statuses not
        given are `default_statuses`."""
        statuses = config.get("statuses")
        return cls(
            type=config["type"],
            statuses=tuple(TaskStatus(s) for s in statuses) if statuses else default_statuses,
            url=config.get("url"),
            secret=config.get("secret"),
            function=config.get("function"),
            dead_letter=bool(config.get("dead_letter")),
        )


@dataclass(frozen=True, slots=True)
class Delivery:
    """One outbox entry: a task's record owed to one destination. `id` is stable across
    retries (receivers de-duplicate by it); `attempts` counts claims so far."""

    id: str
    row: int
    tenant: str
    task_id: str
    function: str
    destination: Destination
    status: Literal["pending", "delivered", "dead"]
    attempts: int
    next_at: float
    created_at: float
    delivered_at: float | None = None
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class ConcurrencyLimit:
    """At most `limit` running tasks per value of `key` (a `domain.keying` expression); what a
    task whose key is at its limit does is the `strategy`."""

    key: str
    limit: int
    strategy: ConcurrencyStrategy = "queue"


@dataclass(frozen=True, slots=True)
class Debounce:
    """Tasks with the same `key` value submitted within `window_s` of the previous one collapse
    into the latest, which runs `window_s` after it came, and at most `max_wait_s` after the
    first of them."""

    key: str
    window_s: float
    max_wait_s: float


@dataclass(frozen=True, slots=True)
class Throttle:
    """At most `per_s` tasks per second per `key` value start their run (`burst` at once);
    submissions over the rate are delayed in order, never refused."""

    key: str
    per_s: float
    burst: int = 1


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """A deployed function: what runs (runtime, handler or command, code) and its limits."""

    name: str
    tenant: str = DEFAULT_TENANT
    runtime: Runtime = "python"
    handler: str | None = None
    command: tuple[str, ...] | None = None
    timeout_s: int = limits.TIMEOUT_S_DEFAULT
    memory_mb: int = limits.MEMORY_MB_DEFAULT
    instance_concurrency: int = 1
    min_instances: int = 0
    max_instances: int = limits.MAX_INSTANCES_DEFAULT
    max_concurrency: int | None = None
    """Running tasks across the cluster; None: only the pools bound it."""
    rate_limit: float | None = None
    """Dispatches per second, cluster-wide (a token bucket of `rate_burst`)."""
    rate_burst: int | None = None
    """The bucket's size; None: one second's worth, at least 1."""
    async_policy: AsyncPolicy = field(default_factory=AsyncPolicy)
    env: dict[str, str] = field(default_factory=dict)
    priority: int = 0
    stop_grace_s: float = limits.STOP_GRACE_S_DEFAULT
    retain_payload: bool = True
    """False: a task's payload, result, checkpoint and logs are purged once it has ended and
    its deliveries are settled (the janitor's sweep); its state history stays."""
    paused: bool = False
    requires: dict[str, str] = field(default_factory=dict)
    """Placement: labels a node must hold (same values) to run the function's tasks."""
    concurrency: tuple[ConcurrencyLimit, ...] = ()
    """Up to 3 limits on running tasks per key value, held across the cluster."""
    debounce: Debounce | None = None
    throttle: Throttle | None = None
    code_sha256: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0

    def instance_config(self) -> tuple[Any, ...]:
        """What an instance is built from: two specs with equal instance configs can share
        warm instances, whatever their limits, policies or paused flag."""
        return (
            self.runtime,
            self.handler,
            self.command,
            self.code_sha256,
            tuple(sorted(self.env.items())),
            self.memory_mb,
            self.instance_concurrency,
            self.timeout_s,
            self.stop_grace_s,
        )

    @property
    def ready(self) -> bool:
        """Whether tasks can run: a python function needs code; a command may run without."""
        return self.code_sha256 is not None or self.runtime == "command"

    def to_config(self) -> dict[str, Any]:
        """The JSON-ready config the store keeps (secrets included; the API shows it through
        `domain.secrets.redact`)."""
        config = asdict(self)
        config["async"] = config.pop("async_policy")
        config["command"] = list(self.command) if self.command is not None else None
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> FunctionSpec:
        data = dict(config)
        policy = dict(data.pop("async", None) or {})
        backoff = policy.pop("retry_backoff", None) or {}
        data["async_policy"] = AsyncPolicy(retry_backoff=RetryBackoff(**backoff), **policy)
        if data.get("command") is not None:
            data["command"] = tuple(data["command"])
        data["concurrency"] = tuple(ConcurrencyLimit(**c) for c in data.get("concurrency") or ())
        if data.get("debounce") is not None:
            data["debounce"] = Debounce(**data["debounce"])
        if data.get("throttle") is not None:
            data["throttle"] = Throttle(**data["throttle"])
        return cls(**data)

    @property
    def keyed(self) -> bool:
        """Whether submissions need their keys evaluated (`domain.keying`)."""
        return bool(self.concurrency) or self.debounce is not None or self.throttle is not None


@dataclass(frozen=True, slots=True)
class TaskKeys:
    """A task's key values, evaluated once at submission from the function's expressions:
    one per `FunctionSpec.concurrency` limit, in order, and the debounce and throttle keys."""

    concurrency: tuple[str, ...] = ()
    debounce: str | None = None
    throttle: str | None = None


@dataclass(frozen=True, slots=True)
class Submission:
    """One task to submit; `task_id` None means the store generates one."""

    payload: bytes
    task_id: str | None = None
    run_at: float | None = None
    priority: int | None = None
    attributes: dict[str, str] | None = None
    """Kept on the task as given: the CloudEvents context of an event (api/cloudevents.py)."""
    keys: TaskKeys | None = None
    """Set by the submitter for a function with keys (`FunctionSpec.keyed`)."""


@dataclass(frozen=True, slots=True)
class Submitted:
    """What a submission became: a new task, or the existing task that holds its id."""

    task_id: str
    status: TaskStatus
    created: bool
    row: int | None = None
    run_at: float | None = None
    """When a new task runs, set where the store decided it (debounce, throttle); None: as
    the submission asked."""


@dataclass(frozen=True, slots=True)
class TaskEvent:
    status: str
    at: float
    detail: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Attempt:
    """One run of a task: where, how long, how it ended and what it cost."""

    number: int
    started_at: float
    finished_at: float | None
    instance_id: str | None
    node: str | None
    outcome: str | None
    error: dict[str, Any] | None
    cpu_ms: float | None
    max_rss_mb: float | None
    instance_started_at: float | None = None
    """When the instance actually began the attempt (claim → here is the cold start)."""


@dataclass(frozen=True, slots=True)
class Task:
    """A task as queried: its row plus, when asked for, its events and attempts."""

    row: int
    id: str
    tenant: str
    function: str
    status: TaskStatus
    attempt: int
    max_attempts: int
    priority: int
    payload: bytes
    created_at: float
    run_at: float
    started_at: float | None
    finished_at: float | None
    result: Any
    error: dict[str, Any] | None
    progress: dict[str, Any] | None
    checkpoint: Any
    instance_id: str | None
    node: str | None
    rerun_of: str | None = None
    attributes: dict[str, str] | None = None
    """A CloudEvent's context attributes, for a task submitted as one; None otherwise."""
    purged_at: float | None = None
    """When its payload, result, checkpoint and logs were erased (read by `get_task` only)."""
    keys: TaskKeys | None = None
    """Its key values (concurrency, debounce, throttle; read by `get_task` only)."""
    events: tuple[TaskEvent, ...] = ()
    attempts: tuple[Attempt, ...] = ()
    deliveries: tuple[Delivery, ...] = ()


@dataclass(frozen=True, slots=True)
class ClaimedTask:
    """A task the dispatcher claimed for one attempt; what the runtime needs to run it."""

    row: int
    id: str
    tenant: str
    function: str
    attempt: int
    max_attempts: int
    payload: bytes
    created_at: float
    started_at: float
    checkpoint: Any = None
    run_at: float | None = None
    attributes: dict[str, str] | None = None
    """The task's CloudEvents context (`Submission.attributes`), for the handler's context."""


@dataclass(frozen=True, slots=True)
class TaskQuery:
    """Filters of the task list; newest first, `cursor` continues after a previous page."""

    tenant: str
    function: str | None = None
    status: TaskStatus | None = None
    since: float | None = None
    until: float | None = None
    limit: int = 50
    cursor: int | None = None


@dataclass(frozen=True, slots=True)
class LogLine:
    seq: int
    at: float
    stream: str
    line: str
