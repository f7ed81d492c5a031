"""The store's functions and code: each function's config and the code zips it points at."""

from __future__ import annotations

from typing import Protocol

from asyncfn.domain.models import FunctionSpec


class FunctionStore(Protocol):
    """Functions' configs and their code, stored by content."""

    async def put_function(self, spec: FunctionSpec) -> bool:
        """Create or replace a function's config (its code hash is kept); True when created."""

    async def get_function(self, tenant: str, name: str) -> FunctionSpec | None: ...

    async def list_functions(self, tenant: str | None = None) -> list[FunctionSpec]:
        """Functions of `tenant`, or of every tenant when None, by name."""

    async def delete_function(self, tenant: str, name: str, now: float) -> int | None:
        """Delete a function; its waiting tasks become Invalid. None when it did not exist,
        else how many tasks were invalidated."""

    async def put_code(self, data: bytes, now: float) -> str:
        """Store a code zip by content; answers its sha256 (storing it twice is a no-op)."""

    async def get_code(self, sha256: str) -> bytes | None: ...

    async def set_function_code(
        self, tenant: str, name: str, sha256: str, now: float
    ) -> FunctionSpec | None:
        """Point a function at stored code; None when the function does not exist."""

    async def set_function_paused(
        self, tenant: str, name: str, paused: bool, now: float
    ) -> FunctionSpec | None:
        """Pause or resume a whole function's queue (`FunctionSpec.paused`); None when the
        function does not exist. A paused function's tasks are accepted but not dispatched."""
