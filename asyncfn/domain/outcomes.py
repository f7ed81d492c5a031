"""How one attempt ended, as the runtime reports it; `policies.next_status` maps it onward."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Resources:
    """What an attempt cost: CPU time and the instance's peak resident memory."""

    cpu_ms: float = 0.0
    max_rss_mb: float = 0.0


@dataclass(frozen=True, slots=True)
class Succeeded:
    result: Any
    duration_ms: float
    resources: Resources = field(default_factory=Resources)


@dataclass(frozen=True, slots=True)
class Raised:
    """The handler raised (or the command exited non-zero); `retryable` False for import errors."""

    type: str
    message: str
    traceback: str | None
    duration_ms: float
    resources: Resources = field(default_factory=Resources)
    retryable: bool = True


@dataclass(frozen=True, slots=True)
class TimedOut:
    timeout_s: float
    duration_ms: float
    resources: Resources = field(default_factory=Resources)


@dataclass(frozen=True, slots=True)
class InstanceExited:
    """The instance process died mid-task: `exit_code` or the signal that killed it."""

    exit_code: int | None
    signal: int | None
    stderr_tail: str
    duration_ms: float
    resources: Resources = field(default_factory=Resources)


@dataclass(frozen=True, slots=True)
class OutOfMemory:
    memory_mb: int
    peak_mb: float
    duration_ms: float
    resources: Resources = field(default_factory=Resources)


@dataclass(frozen=True, slots=True)
class Stopped:
    """The attempt was ended on purpose (a user's stop); the engine knows who asked."""

    duration_ms: float
    resources: Resources = field(default_factory=Resources)


@dataclass(frozen=True, slots=True)
class NodeLost:
    """The node running the attempt died or shut down before the attempt ended."""

    node: str | None
    reason: str
    duration_ms: float = 0.0
    resources: Resources = field(default_factory=Resources)


Outcome = Succeeded | Raised | TimedOut | InstanceExited | OutOfMemory | Stopped | NodeLost
Failure = Raised | TimedOut | InstanceExited | OutOfMemory | NodeLost


def error_of(outcome: Outcome) -> dict[str, Any] | None:
    """The task's `error` JSON for a failed attempt (type, message, traceback); None otherwise."""
    match outcome:
        case Raised(type=type_, message=message, traceback=tb):
            return {"type": type_, "message": message, "traceback": tb}
        case TimedOut(timeout_s=timeout_s):
            return {
                "type": "TimeoutError",
                "message": f"task exceeded its timeout of {timeout_s:g} s",
                "traceback": None,
            }
        case InstanceExited(exit_code=code, signal=sig, stderr_tail=tail):
            how = f"signal {sig}" if sig is not None else f"exit code {code}"
            return {
                "type": "InstanceExited",
                "message": f"instance exited with {how}",
                "traceback": tail or None,
                "exit_code": code,
                "signal": sig,
            }
        case OutOfMemory(memory_mb=limit, peak_mb=peak):
            return {
                "type": "OutOfMemory",
                "message": f"instance used {peak:.0f} MB, over its memory_mb of {limit}",
                "traceback": None,
            }
        case NodeLost(node=node, reason=reason):
            return {"type": "NodeLost", "message": f"node {node}: {reason}", "traceback": None}
        case Succeeded() | Stopped():
            return None
