"""asyncfn: asynchronous function invocation with task mode. The public surface only.

`Context` is what a handler receives. The HTTP clients load on first use: every instance
process imports this package, and must not pay for httpx (~0.2 s) to run a handler.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from asyncfn.runtime.context import Context

if TYPE_CHECKING:
    from asyncfn.client import (
        ApiError,
        AsyncClient,
        AsyncTaskHandle,
        Client,
        ConflictError,
        NotFoundError,
        RateLimited,
        TaskFailed,
        TaskHandle,
        TaskTimeout,
    )

__all__ = [
    "ApiError",
    "AsyncClient",
    "AsyncTaskHandle",
    "Client",
    "ConflictError",
    "Context",
    "NotFoundError",
    "RateLimited",
    "TaskFailed",
    "TaskHandle",
    "TaskTimeout",
]

_FROM_CLIENT = frozenset(__all__) - {"Context"}


def __getattr__(name: str) -> Any:
    if name in _FROM_CLIENT:
        return getattr(importlib.import_module("asyncfn.client"), name)
    raise AttributeError(f"module 'asyncfn' has no attribute {name!r}")
