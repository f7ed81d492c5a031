"""FlowControl: the node's view of flow limits — tenant quotas (refreshed from the store, so a
change through any node holds everywhere within `REFRESH_S`), the tenants' submit gates (429),
the quota each claim carries, and fair shares of scarce dispatch room across tenants and
functions (deficit round robin at both levels)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping

from asyncfn.domain.errors import NotFound, RateLimited
from asyncfn.domain.flow import ClaimQuota, FairShare, TokenBucket, burst_of
from asyncfn.domain.models import FunctionSpec
from asyncfn.domain.tenants import Tenant
from asyncfn.engine.catalog import FunctionKey
from asyncfn.engine.service import Supervisor, wait_for_event
from asyncfn.store.base import Store

log = logging.getLogger("asyncfn.engine")

REFRESH_S = 2.0
"""How often tenant quotas are re-read: a change made through another node holds within this."""


class FlowControl:
    name = "flow"

    def __init__(
        self,
        store: Store,
        supervisor: Supervisor,
        *,
        refresh_s: float = REFRESH_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._supervisor = supervisor
        self._refresh_s = refresh_s
        self._clock = clock
        self._tenants: dict[str, Tenant] = {}
        self._gates: dict[str, TokenBucket] = {}
        self._share = FairShare()
        self._listeners: list[Callable[[str], None]] = []
        self._loop: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def start(self) -> None:
        if self._loop is not None:
            return
        await self.refresh()
        self._loop = self._supervisor.spawn("flow", self._run())

    async def stop(self) -> None:
        self._stop.set()
        await self._supervisor.cancel(self._loop)
        self._loop = None

    def subscribe(self, listener: Callable[[str], None]) -> None:
        """`listener(tenant)` runs when a tenant's quotas change (the dispatcher re-claims)."""
        self._listeners.append(listener)

    # -- tenant quotas -----------------------------------------------------------------------
    async def refresh(self) -> None:
        """Re-read every tenant's quotas from the store."""
        for tenant in await self._store.list_tenants():
            self._apply(tenant)

    async def set_tenant_limits(
        self,
        name: str,
        max_running: int | None,
        submit_rate: float | None,
        submit_burst: int | None,
    ) -> Tenant:
        """Change a tenant's quotas at runtime (NotFound when there is no such tenant)."""
        tenant = await self._store.set_tenant_limits(name, max_running, submit_rate, submit_burst)
        if tenant is None:
            raise NotFound("tenant", name)
        self._apply(tenant)
        return tenant

    def tenant(self, name: str) -> Tenant | None:
        return self._tenants.get(name)

    def tenant_capped(self, name: str) -> bool:
        """Whether the tenant has a running cap (its functions then wait on each other)."""
        tenant = self._tenants.get(name)
        return tenant is not None and tenant.max_running is not None

    def _apply(self, tenant: Tenant) -> None:
        before = self._tenants.get(tenant.name)
        self._tenants[tenant.name] = tenant
        if tenant.submit_rate is None:
            self._gates.pop(tenant.name, None)
        else:
            burst = burst_of(tenant.submit_rate, tenant.submit_burst)
            gate = self._gates.get(tenant.name)
            if gate is None:
                self._gates[tenant.name] = TokenBucket(tenant.submit_rate, burst)
            else:
                gate.retune(tenant.submit_rate, burst)
        if before is not None and before != tenant:
            log.info(
                "tenant %s: max_running %s, submit_rate %s/s (burst %s)",
                tenant.name,
                tenant.max_running,
                tenant.submit_rate,
                tenant.submit_burst,
            )
            for listener in self._listeners:
                listener(tenant.name)

    async def _run(self) -> None:
        while not await wait_for_event(self._stop, self._refresh_s):
            await self.refresh()

    # -- admission ---------------------------------------------------------------------------
    def admit(self, tenant: str, count: int) -> None:
        """Take `count` submissions from the tenant's submit rate; RateLimited (nothing is
        taken) when it is spent. Each node keeps its own bucket."""
        gate = self._gates.get(tenant)
        if gate is None:
            return
        wait = gate.take_all(count, self._clock())
        if wait > 0:
            raise RateLimited(
                f"tenant {tenant!r} is over its submit rate of {gate.rate:g}/s;"
                f" retry in {wait:.2f} s",
                retry_after_s=wait,
            )

    # -- dispatch ----------------------------------------------------------------------------
    def quota(self, spec: FunctionSpec) -> ClaimQuota | None:
        """What a claim for `spec` must respect beyond its count; None when nothing."""
        tenant = self._tenants.get(spec.tenant)
        tenant_cap = tenant.max_running if tenant is not None else None
        if (
            spec.max_concurrency is None
            and spec.rate_limit is None
            and tenant_cap is None
            and not spec.concurrency
        ):
            return None
        burst = burst_of(spec.rate_limit, spec.rate_burst) if spec.rate_limit else 1.0
        return ClaimQuota(
            spec.max_concurrency, tenant_cap, spec.rate_limit, burst, spec.concurrency
        )

    def share(self, demand: Mapping[FunctionKey, int], room: int) -> dict[FunctionKey, int]:
        """Split `room` dispatch slots among functions (see `domain.flow.FairShare`)."""
        return self._share.allocate(demand, room)
