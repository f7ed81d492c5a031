"""Function Compute 3.0's task mode, driven by the real alibabacloud-fc20230330 client against a
real node (auth off on loopback: the SDK signs, the node parses and does not require it)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from alibabacloud_fc20230330 import models
from alibabacloud_fc20230330.client import Client
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.utils_models import Config
from darabonba.runtime import RuntimeOptions

from tests.e2e.compat_auth import TenantKeys, two_tenants
from tests.e2e.harness import Server, deploy, wait_terminal

ECHO = "def handler(event, context):\n    return {'got': event.decode()}\n"
SLEEPY = "import time\ndef handler(event, context):\n    time.sleep(60)\n"
BROKEN = "def handler(event, context):\n    raise KeyError('nope')\n"

pytestmark = pytest.mark.timeout(90)


def fc_client(server: Server, key: str = "AKIDLOCAL", secret: str = "secret") -> Client:
    return Client(
        Config(
            access_key_id=key,
            access_key_secret=secret,
            endpoint=f"127.0.0.1:{server.port}",
            protocol="http",
        )
    )


def invoke_async(client: Client, name: str, body: bytes, task_id: str | None = None) -> Any:
    headers = models.InvokeFunctionHeaders(x_fc_invocation_type="Async", x_fc_async_task_id=task_id)
    return client.invoke_function_with_options(
        name, models.InvokeFunctionRequest(body=body), headers, RuntimeOptions()
    )


def wait_fc(client: Client, name: str, task_id: str, want: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        task = client.get_async_task(name, task_id, models.GetAsyncTaskRequest()).body
        if task.status == want or time.monotonic() > deadline:
            return task
        time.sleep(0.05)


def test_async_invoke_with_and_without_task_id(server: Server, http: httpx.Client) -> None:
    deploy(http, "echo", ECHO)
    client = fc_client(server)
    given = invoke_async(client, "echo", b"hello", task_id="job-1")
    assert given.status_code == 202
    assert given.headers["x-fc-async-task-id"] == "job-1"
    made = invoke_async(client, "echo", b"again")
    assert made.status_code == 202
    generated = made.headers["x-fc-async-task-id"]
    assert generated and generated != "job-1"
    task = wait_fc(client, "echo", "job-1", "Succeeded")
    assert task.status == "Succeeded"
    assert task.return_payload == '{"got":"hello"}'
    assert task.task_payload == "hello"
    assert task.already_retried_times == 0
    assert task.duration_ms is not None and task.end_time >= task.started_time
    assert task.events[0].status == "Enqueued"
    assert task.events[-1].status == "Succeeded"
    assert wait_terminal(http, generated)["status"] == "Succeeded"


def test_a_reused_task_id_is_refused(server: Server, http: httpx.Client) -> None:
    deploy(http, "echo", ECHO)
    client = fc_client(server)
    invoke_async(client, "echo", b"one", task_id="dup")
    with pytest.raises(ClientException) as caught:
        invoke_async(client, "echo", b"two", task_id="dup")
    assert caught.value.status_code == 409
    assert caught.value.code == "StatefulAsyncInvocationAlreadyExists"


def test_sync_invoke_answers_the_result_or_the_error(server: Server, http: httpx.Client) -> None:
    deploy(http, "echo", ECHO)
    deploy(http, "broken", BROKEN, **{"async": {"max_retries": 0}})
    client = fc_client(server)
    ok = client.invoke_function("echo", models.InvokeFunctionRequest(body=b"hi"))
    assert ok.status_code == 200
    assert ok.body.read() == b'{"got":"hi"}'
    bad = client.invoke_function("broken", models.InvokeFunctionRequest(body=b"x"))
    assert bad.headers["x-fc-error-type"] == "UnhandledInvocationError"
    assert b"KeyError" in bad.body.read()


def test_list_filters_by_status_and_pages(server: Server, http: httpx.Client) -> None:
    deploy(http, "echo", ECHO)
    deploy(http, "broken", BROKEN, **{"async": {"max_retries": 0}})
    client = fc_client(server)
    for i in range(5):
        invoke_async(client, "echo", b"x", task_id=f"ok-{i}")
    for i in range(5):
        wait_fc(client, "echo", f"ok-{i}", "Succeeded")
    seen: list[str] = []
    token: str | None = None
    while True:
        page = client.list_async_tasks(
            "echo",
            models.ListAsyncTasksRequest(limit=2, next_token=token, status="Succeeded"),
        ).body
        seen += [t.task_id for t in page.tasks]
        assert all(t.task_payload is None for t in page.tasks)
        token = page.next_token
        if not token:
            break
    assert sorted(seen) == [f"ok-{i}" for i in range(5)]
    running = client.list_async_tasks(
        "echo", models.ListAsyncTasksRequest(status="Running", include_payload=True)
    ).body
    assert running.tasks == []
    prefixed = client.list_async_tasks(
        "echo", models.ListAsyncTasksRequest(prefix="ok-3", include_payload=True)
    ).body
    assert [(t.task_id, t.task_payload) for t in prefixed.tasks] == [("ok-3", "x")]


def test_stop_of_a_running_task(server: Server, http: httpx.Client) -> None:
    deploy(http, "sleepy", SLEEPY, stop_grace_s=1)
    client = fc_client(server)
    invoke_async(client, "sleepy", b"", task_id="long")
    assert wait_fc(client, "sleepy", "long", "Running").status == "Running"
    client.stop_async_task("sleepy", "long", models.StopAsyncTaskRequest())
    assert client.get_async_task("sleepy", "long", models.GetAsyncTaskRequest()).body.status == (
        "Stopped"
    )
    with pytest.raises(ClientException) as caught:
        client.get_async_task("sleepy", "missing", models.GetAsyncTaskRequest())
    assert caught.value.status_code == 404


def test_async_invoke_config_round_trip(server: Server, http: httpx.Client) -> None:
    deploy(http, "broken", BROKEN)
    deploy(http, "echo", ECHO)
    client = fc_client(server)
    config = models.PutAsyncInvokeConfigInput(
        max_async_retry_attempts=0,
        max_async_event_age_in_seconds=300,
        destination_config=models.DestinationConfig(
            on_failure=models.Destination(destination="echo")
        ),
    )
    put = client.put_async_invoke_config(
        "broken", models.PutAsyncInvokeConfigRequest(body=config)
    ).body
    assert put.max_async_retry_attempts == 0
    assert put.destination_config.on_failure.destination == "echo"
    got = client.get_async_invoke_config("broken", models.GetAsyncInvokeConfigRequest()).body
    assert got.max_async_event_age_in_seconds == 300
    listed = client.list_async_invoke_configs(models.ListAsyncInvokeConfigsRequest()).body
    assert {c.function_arn.rsplit("/", 1)[-1] for c in listed.configs} == {"broken", "echo"}
    assert http.get("/v1/functions/broken").json()["async"]["max_retries"] == 0

    invoke_async(client, "broken", b"", task_id="fails-once")
    task = wait_fc(client, "broken", "fails-once", "Failed")
    assert task.status == "Failed" and task.already_retried_times == 0
    assert "KeyError" in task.task_error_message

    client.delete_async_invoke_config("broken", models.DeleteAsyncInvokeConfigRequest())
    assert http.get("/v1/functions/broken").json()["async"]["max_retries"] == 3


@pytest.fixture
def tenants(tmp_path: Path) -> Iterator[tuple[Server, TenantKeys, TenantKeys]]:
    yield from two_tenants(tmp_path)


def test_signed_requests_act_in_the_key_tenant_and_bad_ones_are_refused(
    tenants: tuple[Server, TenantKeys, TenantKeys],
) -> None:
    server, alpha, beta = tenants
    deploy(alpha.http, "echo", ECHO)
    client = fc_client(server, alpha.access_key_id, alpha.access_key_secret)
    invoke_async(client, "echo", b"signed", task_id="mine")
    task = wait_fc(client, "echo", "mine", "Succeeded")
    assert task.return_payload == '{"got":"signed"}'
    listed = client.list_async_tasks("echo", models.ListAsyncTasksRequest(limit=10)).body
    assert [t.task_id for t in listed.tasks] == ["mine"]

    other = fc_client(server, beta.access_key_id, beta.access_key_secret)
    with pytest.raises(ClientException) as caught:
        other.get_async_task("echo", "mine", models.GetAsyncTaskRequest())
    assert caught.value.status_code == 404
    with pytest.raises(ClientException) as caught:
        other.stop_async_task("echo", "mine", models.StopAsyncTaskRequest())
    assert caught.value.status_code == 404

    forged = fc_client(server, alpha.access_key_id, "not-the-secret")
    with pytest.raises(ClientException) as caught:
        forged.get_async_task("echo", "mine", models.GetAsyncTaskRequest())
    assert (caught.value.status_code, caught.value.code) == (403, "SignatureNotMatch")
    unknown = fc_client(server, "AFSKNOSUCHKEY", "whatever")
    with pytest.raises(ClientException) as caught:
        unknown.get_async_task("echo", "mine", models.GetAsyncTaskRequest())
    assert caught.value.code == "InvalidAccessKeyId.NotFound"
