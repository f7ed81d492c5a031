"""The client's flow-control and visibility calls: tenant quotas (only the fields given), a 429
as RateLimited with its retry time, and a function's stats; blocking and awaited alike."""

from __future__ import annotations

import json

import httpx
import pytest

from asyncfn import AsyncClient, Client
from asyncfn.client import RateLimited

TENANT = {"name": "acme", "max_running": None, "submit_rate": 2.0, "submit_burst": None}


def recording(seen: list[httpx.Request], answer: httpx.Response) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer

    return httpx.MockTransport(handle)


def test_set_tenant_limits_sends_only_the_quotas_given_with_none_as_null() -> None:
    seen: list[httpx.Request] = []
    transport = recording(seen, httpx.Response(200, json=TENANT))
    with Client("http://node", transport=transport) as client:
        answer = client.set_tenant_limits("acme", max_running=None, submit_rate=2.0)
        client.set_tenant_limits("acme")

    assert answer == TENANT
    first, second = seen
    assert (first.method, first.url.path) == ("PATCH", "/v1/tenants/acme")
    assert json.loads(first.content) == {"max_running": None, "submit_rate": 2.0}
    assert json.loads(second.content) == {}


def test_a_429_raises_rate_limited_with_the_exact_retry_time_from_the_body() -> None:
    body = {"error": {"code": "rate_limited", "message": "slow down", "retry_after_s": 0.25}}
    answer = httpx.Response(429, json=body, headers={"Retry-After": "1"})
    with (
        Client("http://node", transport=recording([], answer)) as client,
        pytest.raises(RateLimited) as raised,
    ):
        client.invoke_async("echo", b"x")

    assert (raised.value.status_code, raised.value.code) == (429, "rate_limited")
    assert raised.value.retry_after_s == 0.25
    assert raised.value.message == "slow down"


def test_a_429_without_a_body_reads_the_retry_after_header() -> None:
    answer = httpx.Response(429, headers={"Retry-After": "3"})
    with (
        Client("http://node", transport=recording([], answer)) as client,
        pytest.raises(RateLimited) as raised,
    ):
        client.invoke_batch("echo", [1, 2])

    assert raised.value.retry_after_s == 3.0
    assert raised.value.code == "http_429"


def test_function_stats_reads_the_stats_route() -> None:
    seen: list[httpx.Request] = []
    stats = {"function": "resize", "queued": 1, "delayed": 2}
    with Client("http://node", transport=recording(seen, httpx.Response(200, json=stats))) as c:
        assert c.function_stats("re size") == stats

    assert seen[0].url.raw_path == b"/v1/functions/re%20size/stats"


async def test_the_async_client_sets_limits_reads_stats_and_raises_rate_limited() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "PATCH":
            return httpx.Response(200, json={**TENANT, **json.loads(request.content)})
        if request.url.path.endswith("/stats"):
            return httpx.Response(200, json={"function": "resize"})
        body = {"error": {"code": "rate_limited", "message": "m", "retry_after_s": 1.5}}
        return httpx.Response(429, json=body)

    async with AsyncClient("http://node", transport=httpx.MockTransport(handle)) as client:
        tenant = await client.set_tenant_limits("acme", submit_burst=5)
        stats = await client.function_stats("resize")
        with pytest.raises(RateLimited) as raised:
            await client.invoke_async("resize")

    assert tenant["submit_burst"] == 5
    assert stats == {"function": "resize"}
    assert raised.value.retry_after_s == 1.5
