"""FunctionCatalog: the node's cache of deployed functions, kept in step with the store.

The store is the truth; the catalog spares the submit path a read per request. Every change made
through this node goes through the catalog, which writes the store first and then updates itself
and tells its listeners (the dispatcher rebuilds that function's pool). Changes made through
other nodes arrive by `reload` / `reload_all` (engine/cluster.py calls them).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from asyncfn.domain.errors import InvalidInput, NotFound
from asyncfn.domain.models import FunctionSpec
from asyncfn.domain.policies import chain_loop
from asyncfn.store.base import Store

FunctionKey = tuple[str, str]
Listener = Callable[[FunctionKey, FunctionSpec | None], None]


class FunctionCatalog:
    name = "catalog"

    def __init__(self, store: Store) -> None:
        self._store = store
        self._specs: dict[FunctionKey, FunctionSpec] = {}
        self._listeners: list[Listener] = []

    async def start(self) -> None:
        self._specs = {(s.tenant, s.name): s for s in await self._store.list_functions(None)}

    async def stop(self) -> None:
        return None

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _changed(self, key: FunctionKey, spec: FunctionSpec | None) -> None:
        if spec is None:
            self._specs.pop(key, None)
        else:
            self._specs[key] = spec
        for listener in self._listeners:
            listener(key, spec)

    async def reload(self, tenant: str, name: str) -> FunctionSpec | None:
        """Read one function from the store (another node changed it); listeners hear of it
        only when it differs from what the catalog holds. None when it is gone."""
        spec = await self._store.get_function(tenant, name)
        if self._specs.get((tenant, name)) != spec:
            self._changed((tenant, name), spec)
        return spec

    async def reload_all(self) -> None:
        """Read every function from the store (changes may have gone unheard) and apply the
        differences: changed, added and deleted functions."""
        stored = {(s.tenant, s.name): s for s in await self._store.list_functions(None)}
        for key in self._specs.keys() - stored.keys():
            self._changed(key, None)
        for key, spec in stored.items():
            if self._specs.get(key) != spec:
                self._changed(key, spec)

    def get(self, tenant: str, name: str) -> FunctionSpec | None:
        return self._specs.get((tenant, name))

    def require(self, tenant: str, name: str) -> FunctionSpec:
        spec = self._specs.get((tenant, name))
        if spec is None:
            raise NotFound("function", name)
        return spec

    def all(self) -> list[FunctionSpec]:
        return list(self._specs.values())

    def of_tenant(self, tenant: str) -> list[FunctionSpec]:
        return sorted((s for s in self._specs.values() if s.tenant == tenant), key=lambda s: s.name)

    async def put(self, spec: FunctionSpec) -> tuple[FunctionSpec, bool]:
        """Create or update a function; answers the stored spec and whether it was created.
        InvalidInput when its function destinations would chain back to it."""
        others = {s.name: s.async_policy for s in self.of_tenant(spec.tenant)}
        others.pop(spec.name, None)
        loop = chain_loop(spec.name, spec.async_policy, others)
        if loop is not None:
            key, path = loop
            message = f"function destinations would chain in a loop: {path}"
            raise InvalidInput(message, field=f"async.{key}.function")
        now = time.time()
        old = self._specs.get((spec.tenant, spec.name))
        created_at = old.created_at if old is not None else now
        code = old.code_sha256 if old is not None else None
        paused = old.paused if old is not None else False
        spec = dataclasses.replace(
            spec, created_at=created_at, updated_at=now, code_sha256=code, paused=paused
        )
        created = await self._store.put_function(spec)
        stored = await self._store.get_function(spec.tenant, spec.name)
        assert stored is not None
        self._changed((spec.tenant, spec.name), stored)
        return stored, created

    async def set_code(self, tenant: str, name: str, data: bytes) -> str:
        """Store a code zip and point the function at it; answers the sha256."""
        self.require(tenant, name)
        sha = await self._store.put_code(data, time.time())
        spec = await self._store.set_function_code(tenant, name, sha, time.time())
        if spec is None:
            raise NotFound("function", name)
        self._changed((tenant, name), spec)
        return sha

    async def set_paused(self, tenant: str, name: str, paused: bool) -> FunctionSpec:
        """Pause or resume a function's queue (its tasks are accepted but not dispatched)."""
        self.require(tenant, name)
        spec = await self._store.set_function_paused(tenant, name, paused, time.time())
        if spec is None:
            raise NotFound("function", name)
        self._changed((tenant, name), spec)
        return spec

    async def delete(self, tenant: str, name: str) -> int:
        """Delete a function; its waiting tasks become Invalid. Answers how many."""
        invalidated = await self._store.delete_function(tenant, name, time.time())
        if invalidated is None:
            raise NotFound("function", name)
        self._changed((tenant, name), None)
        return invalidated
