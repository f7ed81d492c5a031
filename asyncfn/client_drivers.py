"""The two drivers under `Client` and `AsyncClient`: an httpx client, and the code that performs
`client_calls` steps (send a request, pause) blocking or awaited; the only code that differs."""
# AsyncClient keeps Client's `timeout=` parameters: they bound server-side waits and polling.

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from asyncfn import client_calls as calls
from asyncfn.client_calls import DEFAULT_URL

T = TypeVar("T")


class SyncDriver:
    """Blocking: `transport` replaces httpx's (e.g. `httpx.MockTransport`)."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        api_key: str | None = None,
        timeout: float | httpx.Timeout | None = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url,
            headers=calls.default_headers(api_key),
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _run(self, call: calls.Call[T]) -> T:
        return call.parse(self._http.send(call.request(self._http)))

    def _step(self, step: calls.Step) -> Any:
        if isinstance(step, calls.Call):
            return self._run(step)
        time.sleep(step)
        return None

    def _drive(self, flow: calls.Flow[T]) -> T:
        answer: Any = None
        while True:
            try:
                step = flow.send(answer)
            except StopIteration as stop:
                value: T = stop.value
                return value
            answer = self._step(step)

    def _iterate(self, flow: calls.Stream) -> Iterator[Any]:
        answer: Any = None
        while True:
            try:
                step = flow.send(answer)
            except StopIteration:
                return
            if isinstance(step, calls.Emit):
                answer = None
                yield step.item
            else:
                answer = self._step(step)


class AsyncDriver:
    """Awaited: `transport` replaces httpx's (e.g. `httpx.MockTransport`)."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        api_key: str | None = None,
        timeout: float | httpx.Timeout | None = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers=calls.default_headers(api_key),
            timeout=timeout,
            transport=transport,
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _run(self, call: calls.Call[T]) -> T:
        return call.parse(await self._http.send(call.request(self._http)))

    async def _step(self, step: calls.Step) -> Any:
        if isinstance(step, calls.Call):
            return await self._run(step)
        await asyncio.sleep(step)
        return None

    async def _drive(self, flow: calls.Flow[T]) -> T:
        answer: Any = None
        while True:
            try:
                step = flow.send(answer)
            except StopIteration as stop:
                value: T = stop.value
                return value
            answer = await self._step(step)

    async def _iterate(self, flow: calls.Stream) -> AsyncIterator[Any]:
        answer: Any = None
        while True:
            try:
                step = flow.send(answer)
            except StopIteration:
                return
            if isinstance(step, calls.Emit):
                answer = None
                yield step.item
            else:
                answer = await self._step(step)
