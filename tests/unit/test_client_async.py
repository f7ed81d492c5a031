"""`AsyncClient` does what `Client` does, awaited, against the same real HTTP server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from asyncfn.client import (
    AsyncClient,
    AsyncTaskHandle,
    ConflictError,
    NotFoundError,
    TaskFailed,
    TaskTimeout,
)
from tests.unit.fakeapi import FakeApi

AT = "2025-01-02T03:04:05Z"


@pytest.fixture
async def client(api: FakeApi) -> AsyncIterator[AsyncClient]:
    api.add_function("echo")
    async with AsyncClient(api.url, api_key="k-async") as client:
        yield client


async def test_async_invocation_sends_the_same_request(api: FakeApi, client: AsyncClient) -> None:
    run_at = datetime(2030, 1, 1, 12, tzinfo=UTC)
    handle = await client.invoke_async(
        "echo", {"n": 1}, task_id="x-1", delay_s=None, run_at=run_at, priority=-2
    )
    assert isinstance(handle, AsyncTaskHandle)
    assert (handle.task_id, handle.status) == ("x-1", "Enqueued")
    seen = api.requests("POST", "/v1/functions/echo/invocations")[-1]
    assert json.loads(seen.body) == {"n": 1}
    assert seen.headers["x-invocation-type"] == "Async"
    assert seen.headers["x-run-at"] == "2030-01-01T12:00:00Z"
    assert seen.headers["x-priority"] == "-2"
    assert seen.headers["authorization"] == "Bearer k-async"


async def test_async_payload_encodings(api: FakeApi, client: AsyncClient) -> None:
    await client.invoke_async("echo", b"\x01raw")
    await client.invoke_async("echo", "txt", delay_s=2)
    first, second = api.requests("POST", "/v1/functions/echo/invocations")
    assert first.body == b"\x01raw"
    assert (second.body, second.headers["x-delay-seconds"]) == (b"txt", "2")


async def test_async_duplicate_raises_conflict(api: FakeApi, client: AsyncClient) -> None:
    api.add_task("d-1", status="Succeeded")
    with pytest.raises(ConflictError) as caught:
        await client.invoke_async("echo", b"", task_id="d-1")
    assert (caught.value.existing_task_id, caught.value.existing_status) == ("d-1", "Succeeded")


async def test_async_not_found(client: AsyncClient) -> None:
    with pytest.raises(NotFoundError):
        await client.get_function("nope")
    with pytest.raises(NotFoundError):
        await client.get_task("nope")


async def test_async_wait_and_result(api: FakeApi, client: AsyncClient) -> None:
    handle = await client.invoke_async("echo", b"")
    api.script[handle.task_id] = [{"status": "Running"}, {"status": "Succeeded", "result": "ok"}]
    assert await handle.result(timeout=5) == "ok"
    assert handle.status == "Succeeded"
    assert len(api.requests("GET", f"/v1/tasks/{handle.task_id}")) == 2


async def test_async_result_raises_task_failed(api: FakeApi, client: AsyncClient) -> None:
    handle = await client.invoke_async("echo", b"")
    failure = {"type": "TimeoutError", "message": "too slow", "traceback": None}
    api.script[handle.task_id] = [{"status": "Failed", "error": failure}]
    with pytest.raises(TaskFailed) as caught:
        await handle.result()
    assert caught.value.error == failure


async def test_async_wait_times_out(api: FakeApi, client: AsyncClient) -> None:
    api.add_task("slow", status="Running")
    with pytest.raises(TaskTimeout):
        await client.wait("slow", timeout=0.03)


async def test_async_sync_invoke(client: AsyncClient) -> None:
    assert await client.invoke("echo", "hey") == {"echo": "hey"}
    with pytest.raises(TaskFailed) as failed:
        await client.invoke("echo", b"fail")
    assert failed.value.status_code == 502
    with pytest.raises(TaskTimeout) as timed_out:
        await client.invoke("echo", b"slow")
    assert timed_out.value.status_code == 504


async def test_async_follow_logs(api: FakeApi, client: AsyncClient) -> None:
    api.add_task("l-1", status="Running")
    lines = [{"seq": n, "at": AT, "stream": "stdout", "line": str(n)} for n in (1, 2)]
    api.pending_logs["l-1"] = list(lines)
    assert [line async for line in client.follow_logs("l-1", poll_s=0.01)] == lines
    assert await client.logs("l-1", after=1) == lines[1:]


async def test_async_iter_tasks_follows_cursors(api: FakeApi, client: AsyncClient) -> None:
    for n in range(3):
        api.add_task(f"t-{n}")
    assert [t["id"] async for t in client.iter_tasks(page_size=2)] == ["t-2", "t-1", "t-0"]
    page = await client.list_tasks(limit=2)
    assert page["next_cursor"] == "2"


async def test_async_batch(api: FakeApi, client: AsyncClient) -> None:
    handles = await client.invoke_batch("echo", [1, {"payload": "two", "task_id": "b-2"}])
    assert [h.task_id for h in handles][1] == "b-2"
    assert all(isinstance(h, AsyncTaskHandle) and h.created for h in handles)


async def test_async_deploy_and_functions(api: FakeApi, client: AsyncClient) -> None:
    function = await client.deploy("cmd", command=["python3", "x.py"], code=b"zip", memory_mb=256)
    assert function["code_sha256"] == api.functions["cmd"]["code_sha256"]
    assert api.requests("PUT", "/v1/functions/cmd")[0].json() == {
        "runtime": "command",
        "command": ["python3", "x.py"],
        "memory_mb": 256,
    }
    assert await client.upload_code("cmd", b"zip2") == api.functions["cmd"]["code_sha256"]
    assert {f["name"] for f in await client.list_functions()} == {"echo", "cmd"}
    await client.delete_function("cmd")
    assert (await client.health())["status"] == "ok"
