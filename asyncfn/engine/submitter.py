"""Submitter: the write side of invocations: checks the function, commits the tasks (group
committed by the store) and tells the dispatcher at once, so submit→start needs no polling."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence

from asyncfn.domain.errors import FunctionNotReady
from asyncfn.domain.keying import KeyReader
from asyncfn.domain.models import FunctionSpec, Submission, Submitted, TaskKeys
from asyncfn.engine.catalog import FunctionCatalog, FunctionKey
from asyncfn.metrics import NodeMetrics
from asyncfn.store.base import Store
from asyncfn.store.shaping import Shaping


class Submitter:
    name = "submitter"

    def __init__(
        self,
        store: Store,
        catalog: FunctionCatalog,
        notify: Callable[[FunctionKey, float | None], None],
        *,
        metrics: NodeMetrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._metrics = metrics or NodeMetrics()
        self._store = store
        self._catalog = catalog
        self._notify = notify
        self._clock = clock

    def function(self, tenant: str, name: str) -> FunctionSpec:
        """The function to invoke; NotFound or FunctionNotReady when it cannot take tasks."""
        spec = self._catalog.require(tenant, name)
        if not spec.ready:
            raise FunctionNotReady(name)
        return spec

    async def submit(
        self,
        tenant: str,
        name: str,
        submissions: Sequence[Submission],
        headers: Mapping[str, str] | None = None,
    ) -> list[Submitted]:
        """Commit `submissions` as new tasks of one function, in one transaction. `headers`
        (lower-case names) are the request's, for keys read from a header."""
        spec = self.function(tenant, name)
        if spec.keyed:
            submissions = [with_keys(spec, s, headers) for s in submissions]
        now = self._clock()
        results = await self._store.submit_many(
            tenant,
            name,
            submissions,
            now,
            spec.async_policy.max_attempts,
            spec.priority,
            shaping=Shaping.of(spec),
        )
        key = (tenant, name)
        due_now = False
        earliest: float | None = None
        created = 0
        for sub, res in zip(submissions, results, strict=True):
            if not res.created:
                continue
            created += 1
            run_at = sub.run_at if res.run_at is None else res.run_at  # the store's, if shaped
            if run_at is None or run_at <= now:
                due_now = True
            elif earliest is None or run_at < earliest:
                earliest = run_at
        if created:
            self._metrics.submissions.labels(name).inc(created)
        if due_now:
            self._notify(key, None)
        if earliest is not None:
            self._notify(key, earliest)
        return results


def with_keys(
    spec: FunctionSpec, submission: Submission, headers: Mapping[str, str] | None
) -> Submission:
    """`submission` with its key values (`TaskKeys`) evaluated from `spec`'s expressions."""
    reader = KeyReader(submission.payload, spec.tenant, headers)
    keys = TaskKeys(
        concurrency=reader.values([c.key for c in spec.concurrency]),
        debounce=reader.value(spec.debounce.key) if spec.debounce else None,
        throttle=reader.value(spec.throttle.key) if spec.throttle else None,
    )
    return dataclasses.replace(submission, keys=keys)
