"""Lambda's Invoke and event-invoke-config, driven by the real boto3 client against a real node
(auth off on loopback: boto3 signs, the node parses and does not require it)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.e2e.compat_auth import TenantKeys, two_tenants
from tests.e2e.harness import Server, deploy, wait_terminal

ECHO = "import json\ndef handler(event, context):\n    return {'echo': json.loads(event)}\n"
BROKEN = "def handler(event, context):\n    raise KeyError('nope')\n"

pytestmark = pytest.mark.timeout(90)


def lambda_client(server: Server, key: str = "AKIDLOCAL", secret: str = "secret") -> Any:
    return boto3.client(
        "lambda",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1}),
    )


def test_event_invoke_queues_a_task_that_runs(server: Server, http: httpx.Client) -> None:
    deploy(http, "echo", ECHO)
    answer = lambda_client(server).invoke(
        FunctionName="echo", InvocationType="Event", Payload=b'{"a": 1}'
    )
    assert answer["StatusCode"] == 202
    task_id = answer["ResponseMetadata"]["RequestId"]
    task = wait_terminal(http, task_id)
    assert task["status"] == "Succeeded"
    assert task["result"] == {"echo": {"a": 1}}


def test_request_response_returns_the_result(server: Server, http: httpx.Client) -> None:
    deploy(http, "echo", ECHO)
    answer = lambda_client(server).invoke(FunctionName="echo", Payload=b'{"b": 2}')
    assert answer["StatusCode"] == 200
    assert "FunctionError" not in answer
    assert json.loads(answer["Payload"].read()) == {"echo": {"b": 2}}


def test_handler_error_surfaces_as_unhandled_function_error(
    server: Server, http: httpx.Client
) -> None:
    deploy(http, "broken", BROKEN, **{"async": {"max_retries": 0}})
    answer = lambda_client(server).invoke(FunctionName="broken", Payload=b"{}")
    assert answer["StatusCode"] == 200
    assert answer["FunctionError"] == "Unhandled"
    error = json.loads(answer["Payload"].read())
    assert error["errorType"] == "KeyError"
    assert "nope" in error["errorMessage"]
    assert isinstance(error["stackTrace"], list) and error["stackTrace"]


def test_dry_run_answers_204_and_runs_nothing(server: Server, http: httpx.Client) -> None:
    deploy(http, "echo", ECHO)
    answer = lambda_client(server).invoke(FunctionName="echo", InvocationType="DryRun")
    assert answer["StatusCode"] == 204
    assert http.get("/v1/tasks", params={"function": "echo"}).json()["items"] == []


def test_unknown_function_raises_resource_not_found(server: Server) -> None:
    client = lambda_client(server)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.invoke(FunctionName="nope", InvocationType="Event", Payload=b"{}")
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_function_event_invoke_config(FunctionName="nope")


def test_event_invoke_config_round_trip_changes_retries(server: Server, http: httpx.Client) -> None:
    deploy(http, "broken", BROKEN)
    client = lambda_client(server)
    put = client.put_function_event_invoke_config(
        FunctionName="broken",
        MaximumRetryAttempts=0,
        MaximumEventAgeInSeconds=600,
        DestinationConfig={"OnFailure": {"Destination": "echo"}},
    )
    assert put["MaximumRetryAttempts"] == 0
    got = client.get_function_event_invoke_config(FunctionName="broken")
    assert got["MaximumEventAgeInSeconds"] == 600
    assert got["DestinationConfig"]["OnFailure"] == {"Destination": "echo"}
    policy = http.get("/v1/functions/broken").json()["async"]
    assert policy["max_retries"] == 0 and policy["max_event_age_s"] == 600
    assert policy["on_failure"]["function"] == "echo"

    answer = client.invoke(FunctionName="broken", InvocationType="Event", Payload=b"{}")
    task = wait_terminal(http, answer["ResponseMetadata"]["RequestId"])
    assert task["status"] == "Failed"
    assert task["attempt"] == 1 and task["max_attempts"] == 1

    client.delete_function_event_invoke_config(FunctionName="broken")
    assert http.get("/v1/functions/broken").json()["async"]["max_retries"] == 3
    with pytest.raises(client.exceptions.InvalidParameterValueException):
        client.put_function_event_invoke_config(FunctionName="broken", MaximumRetryAttempts=5)


@pytest.fixture
def tenants(tmp_path: Path) -> Iterator[tuple[Server, TenantKeys, TenantKeys]]:
    yield from two_tenants(tmp_path)


def test_signed_requests_act_in_the_key_tenant_and_bad_ones_are_refused(
    tenants: tuple[Server, TenantKeys, TenantKeys],
) -> None:
    server, alpha, beta = tenants
    deploy(alpha.http, "echo", ECHO)
    client = lambda_client(server, alpha.access_key_id, alpha.access_key_secret)
    answer = client.invoke(FunctionName="echo", Payload=b'{"c": 3}')
    assert json.loads(answer["Payload"].read()) == {"echo": {"c": 3}}
    queued = client.invoke(FunctionName="echo", InvocationType="Event", Payload=b"{}")
    task_id = queued["ResponseMetadata"]["RequestId"]
    assert wait_terminal(alpha.http, task_id)["status"] == "Succeeded"

    other = lambda_client(server, beta.access_key_id, beta.access_key_secret)
    with pytest.raises(other.exceptions.ResourceNotFoundException):
        other.invoke(FunctionName="echo", Payload=b"{}")
    assert beta.http.get(f"/v1/tasks/{task_id}").status_code == 404

    forged = lambda_client(server, alpha.access_key_id, "not-the-secret")
    with pytest.raises(ClientError) as caught:
        forged.invoke(FunctionName="echo", Payload=b"{}")
    assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"
    unknown = lambda_client(server, "AFSKNOSUCHKEY", "whatever")
    with pytest.raises(ClientError) as caught:
        unknown.invoke(FunctionName="echo", Payload=b"{}")
    assert caught.value.response["Error"]["Code"] == "UnrecognizedClientException"
    assert httpx.post(f"{server.url}/2015-03-31/functions/echo/invocations").status_code == 403
