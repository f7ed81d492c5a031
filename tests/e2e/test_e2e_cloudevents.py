"""CloudEvents 1.0 intake on a real server: binary, structured and batch modes each make tasks
that run with the event's data; an event (source + id) makes one task however often it comes;
its attributes are kept on the task; a missing required attribute is refused, named."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import orjson

from tests.e2e.harness import deploy, wait_terminal

HEX = "def handler(event, context):\n    return event.hex()\n"
URL = "/v1/functions/sink/cloudevents"
STRUCTURED = {"Content-Type": "application/cloudevents+json"}
BATCH = {"Content-Type": "application/cloudevents-batch+json"}


def ce_headers(event_id: str, **more: str) -> dict[str, str]:
    return {
        "ce-specversion": "1.0",
        "ce-id": event_id,
        "ce-source": "/orders",
        "ce-type": "com.example.order.created",
        **more,
    }


def event(event_id: str, **more: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "/orders",
        "type": "com.example.order.created",
        **more,
    }


def ran_with(http: httpx.Client, task_id: str) -> bytes:
    """The payload the handler saw (it answers it in hex)."""
    task = wait_terminal(http, task_id)
    assert task["status"] == "Succeeded", task
    return bytes.fromhex(task["result"])


def accepted(resp: httpx.Response) -> dict[str, Any]:
    assert resp.status_code == 202, resp.text
    return dict(resp.json())


def error_of(resp: httpx.Response, status: int) -> dict[str, str]:
    assert resp.status_code == status, resp.text
    return dict(resp.json()["error"])


def test_binary_mode_runs_the_body_and_keeps_the_attributes(http: httpx.Client) -> None:
    deploy(http, "sink", HEX)
    headers = ce_headers(
        "b-1",
        **{
            "Content-Type": "application/json",
            "ce-subject": "order 42",
            "ce-time": "2030-01-02T03:04:05Z",
            "ce-dataschema": "https://example.com/order.json",
            "ce-traceparent": "00-abc-def-01",
        },
    )
    answer = accepted(http.post(URL, content=b'{"order": 42}', headers=headers))
    assert answer["created"] is True and answer["status"] == "Enqueued"
    assert answer["task_id"].startswith("ce-")
    assert ran_with(http, answer["task_id"]) == b'{"order": 42}'
    task = http.get(f"/v1/tasks/{answer['task_id']}").json()
    assert task["attributes"] == {
        "specversion": "1.0",
        "id": "b-1",
        "source": "/orders",
        "type": "com.example.order.created",
        "subject": "order 42",
        "time": "2030-01-02T03:04:05Z",
        "dataschema": "https://example.com/order.json",
        "datacontenttype": "application/json",
        "traceparent": "00-abc-def-01",
    }
    raw = bytes(range(256))  # not text: passed on as it is
    headers = ce_headers("b-2", **{"Content-Type": "application/octet-stream"})
    answer = accepted(http.post(URL, content=raw, headers=headers))
    assert ran_with(http, answer["task_id"]) == raw


def test_structured_mode_runs_the_data(http: httpx.Client) -> None:
    deploy(http, "sink", HEX)
    cases = [
        (event("s-1", data={"order": 42}), orjson.dumps({"order": 42})),
        (event("s-2", data_base64=base64.b64encode(b"\x00\xffraw").decode()), b"\x00\xffraw"),
        (event("s-3", datacontenttype="text/plain", data="hello"), b"hello"),
        (event("s-4", data="hello"), b'"hello"'),  # JSON data (the default): JSON-encoded
        (event("s-5"), b""),
    ]
    for body, payload in cases:
        answer = accepted(http.post(URL, content=orjson.dumps(body), headers=STRUCTURED))
        assert answer["created"] is True
        assert ran_with(http, answer["task_id"]) == payload, body
    task = http.get(f"/v1/tasks/{answer['task_id']}").json()
    assert task["attributes"] == {k: v for k, v in event("s-5").items()}


def test_batch_mode_answers_per_event_in_order(http: httpx.Client) -> None:
    deploy(http, "sink", HEX)
    events = [event("m-1", data=[1]), event("m-2", data=[2]), event("m-1", data=[3])]
    items = accepted(http.post(URL, content=orjson.dumps(events), headers=BATCH))["items"]
    assert [i["created"] for i in items] == [True, True, False]
    assert items[0]["task_id"] == items[2]["task_id"] != items[1]["task_id"]
    assert ran_with(http, items[0]["task_id"]) == b"[1]"  # the first holds the id
    assert ran_with(http, items[1]["task_id"]) == b"[2]"
    task = http.get(f"/v1/tasks/{items[1]['task_id']}").json()
    assert task["attributes"]["id"] == "m-2"


def test_the_same_event_twice_is_one_task(http: httpx.Client) -> None:
    deploy(http, "sink", HEX)
    deploy(http, "other", HEX)
    first = accepted(http.post(URL, content=b"1", headers=ce_headers("d-1")))
    again = accepted(http.post(URL, content=b"2", headers=ce_headers("d-1")))
    assert again == {"task_id": first["task_id"], "status": again["status"], "created": False}
    structured = orjson.dumps(event("d-1", data=3))  # the same event in the other mode
    assert accepted(http.post(URL, content=structured, headers=STRUCTURED))["created"] is False
    assert ran_with(http, first["task_id"]) == b"1"
    elsewhere = accepted(
        http.post("/v1/functions/other/cloudevents", content=b"4", headers=ce_headers("d-1"))
    )
    assert elsewhere["created"] is True and elsewhere["task_id"] != first["task_id"]
    other_source = ce_headers("d-1", **{"ce-source": "/payments"})
    assert accepted(http.post(URL, content=b"5", headers=other_source))["created"] is True
    sink_tasks = http.get("/v1/tasks", params={"function": "sink"}).json()["items"]
    assert len(sink_tasks) == 2


def test_bad_events_are_refused_naming_the_attribute(http: httpx.Client) -> None:
    deploy(http, "sink", HEX)
    for header in ("ce-specversion", "ce-id", "ce-source", "ce-type"):
        headers = ce_headers("x-1")
        del headers[header]
        assert error_of(http.post(URL, content=b"x", headers=headers), 422)["field"] == header
    headers = ce_headers("x-1", **{"ce-specversion": "0.3"})
    assert error_of(http.post(URL, content=b"x", headers=headers), 422)["field"] == (
        "ce-specversion"
    )
    headers = ce_headers("x-1", **{"ce-time": "yesterday"})
    assert error_of(http.post(URL, content=b"x", headers=headers), 400)["field"] == "ce-time"
    no_source = {k: v for k, v in event("x-2").items() if k != "source"}
    resp = http.post(URL, content=orjson.dumps(no_source), headers=STRUCTURED)
    assert error_of(resp, 422)["field"] == "source"
    resp = http.post(URL, content=b"{not json", headers=STRUCTURED)
    assert error_of(resp, 400)["field"] == "body"
    resp = http.post(URL, content=orjson.dumps([event("x-3"), {"id": "x-4"}]), headers=BATCH)
    assert error_of(resp, 422)["field"] == "[1].specversion"
    resp = http.post(URL, content=orjson.dumps([event("x-3"), 7]), headers=BATCH)
    assert error_of(resp, 400)["field"] == "[1]"
    resp = http.post(URL, content=b"[]", headers=BATCH)
    assert error_of(resp, 400)["field"] == "body"
    assert http.get("/v1/tasks").json()["items"] == []  # nothing of a refused request ran
    err = error_of(http.post("/v1/functions/ghost/cloudevents", headers=ce_headers("x")), 404)
    assert err["code"] == "function_not_found"


def test_other_tasks_have_no_attributes(http: httpx.Client) -> None:
    deploy(http, "sink", HEX)
    task_id = accepted(http.post("/v1/functions/sink/invocations", content=b"x"))["task_id"]
    assert http.get(f"/v1/tasks/{task_id}").json()["attributes"] is None
