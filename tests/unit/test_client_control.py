"""Task and function control (stop, suspend, resume, rerun, pause) through `Client` and
`AsyncClient`, against the real HTTP fake of the API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from asyncfn.client import (
    AsyncClient,
    AsyncTaskHandle,
    Client,
    ConflictError,
    NotFoundError,
    TaskHandle,
)
from tests.unit.fakeapi import FakeApi


@pytest.fixture
def client(api: FakeApi) -> Iterator[Client]:
    api.add_function("echo")
    with Client(api.url, api_key="k-ctl") as client:
        yield client


@pytest.fixture
async def aclient(api: FakeApi) -> AsyncIterator[AsyncClient]:
    api.add_function("echo")
    async with AsyncClient(api.url, api_key="k-actl") as client:
        yield client


def only_post(api: FakeApi, path: str) -> dict[str, str]:
    (seen,) = api.requests("POST", path)
    assert seen.path == path and seen.body == b""
    return seen.headers


# -- Client


def test_stop_posts_the_action_and_answers_the_body(api: FakeApi, client: Client) -> None:
    api.add_task("s-1", status="Running")
    assert client.stop("s-1") == {"task_id": "s-1", "status": "Stopped"}
    headers = only_post(api, "/v1/tasks/s-1:stop")
    assert headers["authorization"] == "Bearer k-ctl"
    assert api.tasks["s-1"]["status"] == "Stopped"


def test_stop_answers_stopping_when_the_task_outlives_the_wait(
    api: FakeApi, client: Client
) -> None:
    api.add_task("s-2", status="Running")
    api.slow_stops.add("s-2")
    assert client.stop("s-2")["status"] == "Stopping"


def test_stop_waits_past_the_clients_read_timeout(api: FakeApi) -> None:
    api.add_task("s-3", status="Running")
    api.add_task("s-4", status="Running")
    api.stop_wait_s = 0.3
    with Client(api.url, timeout=0.1) as client:
        assert client.stop("s-3")["status"] == "Stopped"
        with pytest.raises(httpx.ReadTimeout):
            client.stop("s-4", timeout=0.05)


def test_a_task_id_with_a_colon_is_escaped(api: FakeApi, client: Client) -> None:
    api.add_task("job:1", status="Enqueued")
    assert client.suspend("job:1") == {"task_id": "job:1", "status": "Suspended"}
    assert api.tasks["job:1"]["status"] == "Suspended"


@pytest.mark.parametrize("action", ["stop", "suspend", "resume"])
def test_an_ended_task_refuses_with_its_current_status(
    api: FakeApi, client: Client, action: str
) -> None:
    api.add_task("e-1", status="Succeeded")
    with pytest.raises(ConflictError) as caught:
        getattr(client, action)("e-1")
    error = caught.value
    assert (error.status_code, error.code) == (409, "transition_refused")
    assert (error.existing_task_id, error.existing_status) == ("e-1", "Succeeded")
    assert "Succeeded" in error.message
    assert api.tasks["e-1"]["status"] == "Succeeded"


def test_unknown_task_actions_raise_not_found(client: Client) -> None:
    for call in (client.stop, client.suspend, client.resume, client.rerun):
        with pytest.raises(NotFoundError, match="task_not_found"):
            call("missing")


def test_suspend_then_resume(api: FakeApi, client: Client) -> None:
    api.add_task("r-1", status="Enqueued")
    assert client.suspend("r-1")["status"] == "Suspended"
    assert client.resume("r-1") == {"task_id": "r-1", "status": "Enqueued"}
    with pytest.raises(ConflictError) as caught:
        client.resume("r-1")
    assert caught.value.existing_status == "Enqueued"


def test_rerun_answers_a_handle_of_the_new_task(api: FakeApi, client: Client) -> None:
    api.add_task("old", status="Failed", payload="data")
    handle = client.rerun("old")
    assert isinstance(handle, TaskHandle) and handle.client is client
    assert handle.status == "Enqueued" and handle.task_id != "old"
    assert "x-task-id" not in only_post(api, "/v1/tasks/old:rerun")
    new = api.tasks[handle.task_id]
    assert (new["rerun_of"], new["function"], new["payload"]) == ("old", "echo", "data")


def test_rerun_sends_the_new_task_id(api: FakeApi, client: Client) -> None:
    api.add_task("old", status="Stopped")
    assert client.rerun("old", task_id="again-1").task_id == "again-1"
    assert only_post(api, "/v1/tasks/old:rerun")["x-task-id"] == "again-1"


def test_rerun_of_a_task_not_ended_is_refused(api: FakeApi, client: Client) -> None:
    api.add_task("live", status="Running")
    with pytest.raises(ConflictError) as caught:
        client.rerun("live")
    assert (caught.value.code, caught.value.existing_status) == ("transition_refused", "Running")
    assert caught.value.existing_task_id == "live"


def test_rerun_to_a_taken_id_is_a_duplicate(api: FakeApi, client: Client) -> None:
    api.add_task("old", status="Succeeded")
    api.add_task("taken", status="Running")
    with pytest.raises(ConflictError) as caught:
        client.rerun("old", task_id="taken")
    error = caught.value
    assert (error.code, error.existing_task_id, error.existing_status) == (
        "duplicate_task",
        "taken",
        "Running",
    )


def test_suspend_and_resume_a_function(api: FakeApi, client: Client) -> None:
    paused = client.suspend_function("echo")
    assert (paused["name"], paused["paused"]) == ("echo", True)
    only_post(api, "/v1/functions/echo:suspend")
    assert client.get_function("echo")["paused"] is True
    assert client.resume_function("echo")["paused"] is False
    with pytest.raises(NotFoundError, match="function_not_found"):
        client.suspend_function("nope")


def test_handle_control_updates_its_status(api: FakeApi, client: Client) -> None:
    handle = client.invoke_async("echo", b"x", task_id="h-1")
    assert handle.suspend()["status"] == "Suspended" == handle.status
    assert handle.resume()["status"] == "Enqueued" == handle.status
    assert handle.stop() == {"task_id": "h-1", "status": "Stopped"}
    assert handle.status == "Stopped"
    again = handle.rerun(task_id="h-2")
    assert (again.task_id, again.status, again.client) == ("h-2", "Enqueued", client)
    with pytest.raises(ConflictError):
        handle.stop()
    assert handle.status == "Stopped"


# -- AsyncClient: the same calls, awaited


async def test_async_task_actions(api: FakeApi, aclient: AsyncClient) -> None:
    api.add_task("a-1", status="Enqueued")
    assert await aclient.suspend("a-1") == {"task_id": "a-1", "status": "Suspended"}
    assert (await aclient.resume("a-1"))["status"] == "Enqueued"
    api.slow_stops.add("a-1")
    assert await aclient.stop("a-1") == {"task_id": "a-1", "status": "Stopping"}
    paths = [seen.path for seen in api.requests("POST", "/v1/tasks/")]
    assert paths == ["/v1/tasks/a-1:suspend", "/v1/tasks/a-1:resume", "/v1/tasks/a-1:stop"]
    assert api.seen[-1].headers["authorization"] == "Bearer k-actl"


async def test_async_refusals_and_not_found(api: FakeApi, aclient: AsyncClient) -> None:
    api.add_task("done", status="Expired")
    for action in (aclient.stop, aclient.suspend, aclient.resume):
        with pytest.raises(ConflictError) as caught:
            await action("done")
        assert (caught.value.code, caught.value.existing_status) == (
            "transition_refused",
            "Expired",
        )
    with pytest.raises(NotFoundError):
        await aclient.stop("missing")


async def test_async_stop_waits_past_the_read_timeout(api: FakeApi) -> None:
    api.add_task("s-1", status="Running")
    api.stop_wait_s = 0.3
    async with AsyncClient(api.url, timeout=0.1) as client:
        assert (await client.stop("s-1"))["status"] == "Stopped"


async def test_async_rerun(api: FakeApi, aclient: AsyncClient) -> None:
    api.add_task("old", status="Failed")
    api.add_task("live", status="Running")
    handle = await aclient.rerun("old", task_id="new-1")
    assert isinstance(handle, AsyncTaskHandle)
    assert (handle.task_id, handle.status) == ("new-1", "Enqueued")
    assert api.tasks["new-1"]["rerun_of"] == "old"
    with pytest.raises(ConflictError) as refused:
        await aclient.rerun("live")
    assert refused.value.existing_status == "Running"
    with pytest.raises(ConflictError) as duplicate:
        await aclient.rerun("old", task_id="live")
    assert (duplicate.value.code, duplicate.value.existing_task_id) == ("duplicate_task", "live")


async def test_async_suspend_and_resume_a_function(api: FakeApi, aclient: AsyncClient) -> None:
    assert (await aclient.suspend_function("echo"))["paused"] is True
    assert (await aclient.resume_function("echo"))["paused"] is False
    assert [s.path for s in api.requests("POST", "/v1/functions")] == [
        "/v1/functions/echo:suspend",
        "/v1/functions/echo:resume",
    ]
    with pytest.raises(NotFoundError):
        await aclient.resume_function("nope")


async def test_async_handle_control(api: FakeApi, aclient: AsyncClient) -> None:
    handle = await aclient.invoke_async("echo", b"x", task_id="h-1")
    assert (await handle.suspend())["status"] == "Suspended" == handle.status
    assert (await handle.resume())["status"] == "Enqueued" == handle.status
    assert (await handle.stop())["status"] == "Stopped" == handle.status
    again = await handle.rerun()
    assert isinstance(again, AsyncTaskHandle) and again.client is aclient
    assert api.tasks[again.task_id]["rerun_of"] == "h-1"
