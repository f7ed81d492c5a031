"""CloudEvents 1.0 intake: `POST /v1/functions/{name}/cloudevents` takes one event (binary or
structured content mode) or a batch of them; each becomes a task. The `cloudevents` SDK parses
and validates; this module maps its answers onto submissions and our errors.

- The task id comes from the event: `ce-` + the SHA-256 of function, source and id, so a
  redelivered event answers the task it made (202, `created: false`) instead of making another.
- The payload is the event's data as the binary mode carries it: the body itself in binary mode;
  in the JSON format, `data_base64` decoded, a string as its UTF-8 text when the data content
  type is not JSON, anything else JSON-encoded.
- The context attributes (required, optional and extensions) are kept on the task, as strings.
"""

from __future__ import annotations

import binascii
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings.http import HTTPMessage, from_binary, from_structured
from cloudevents.core.exceptions import CloudEventValidationError
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from starlette.requests import Request
from starlette.responses import Response

from asyncfn.api.deps import NodeServices, tenant_of
from asyncfn.api.render import json_response
from asyncfn.api.routes.invocations import read_body
from asyncfn.domain import limits
from asyncfn.domain.errors import InvalidInput, Malformed, PayloadTooLarge
from asyncfn.domain.models import Submission

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
REQUIRED = ("specversion", "id", "source", "type")
"""The attributes every event must carry. The SDK would make up a missing id, specversion and
time; an intake must not (the id is the dedup key), so they are checked before it sees them."""
FORMAT = JSONFormat()

Namer = Callable[[str], str]
"""How an error names an attribute: `ce-id` in binary mode, `id` or `[2].id` in the JSON ones."""


def task_id_of(function: str, source: str, event_id: str) -> str:
    """The task id of an event: the same event (source + id) sent to one function twice is one
    task; sent to two functions, two tasks. Always matches `limits.TASK_ID_RE`."""
    digest = hashlib.sha256(f"{function}\n{source}\n{event_id}".encode()).hexdigest()
    return f"ce-{digest}"


def _header_name(attribute: str) -> str:
    return "Content-Type" if attribute == "datacontenttype" else f"ce-{attribute}"


class _Reader:
    """The SDK's event factory: checks the required attributes, then keeps them as given
    (before `CloudEvent` adds a `time` of its own)."""

    def __init__(self, name_of: Namer) -> None:
        self.name_of = name_of
        self.given: dict[str, Any] = {}

    def __call__(self, attributes: dict[str, Any], data: Any = None) -> BaseCloudEvent:
        for attribute in REQUIRED:
            if attributes.get(attribute) in (None, ""):
                field = self.name_of(attribute)
                raise InvalidInput(f"the event has no {field}", field=field)
        self.given = {k: v for k, v in attributes.items() if v is not None}
        return CloudEvent(dict(self.given), data)


def _read(
    parse: Callable[[_Reader], BaseCloudEvent], name_of: Namer
) -> tuple[BaseCloudEvent, dict[str, Any]]:
    """The event `parse` reads and its attributes as given; our errors for the SDK's."""
    reader = _Reader(name_of)
    try:
        event = parse(reader)
    except CloudEventValidationError as exc:
        attribute, problems = next(iter(exc.errors.items()))
        field = name_of(attribute)
        raise InvalidInput(f"{field}: {problems[0]}", field=field) from exc
    except binascii.Error as exc:
        raise Malformed(f"data_base64 is not base64: {exc}", field=name_of("data_base64")) from exc
    except (ValueError, TypeError) as exc:  # the one attribute the SDK parses: time
        field = name_of("time")
        raise Malformed(f"{field} is not an RFC 3339 time", field=field) from exc
    return event, reader.given


def _attributes(given: dict[str, Any], name_of: Namer) -> dict[str, str]:
    """Attributes as the strings the HTTP binding would send (times in UTC with a Z)."""
    out: dict[str, str] = {}
    for name, value in given.items():
        if isinstance(value, datetime):
            text = value.astimezone(UTC).isoformat().replace("+00:00", "Z")
        elif isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, str | int | float):
            text = str(value)
        else:
            field = name_of(name)
            raise InvalidInput(f"{field} is not a string, number or boolean", field=field)
        out[name] = text
    return out


def _data_payload(event: BaseCloudEvent) -> bytes:
    data: Any = event.get_data()
    if data is None:
        return b""
    if isinstance(data, bytes):
        return data
    content_type = event.get_datacontenttype() or FORMAT.DEFAULT_CONTENT_TYPE
    if isinstance(data, str) and not FORMAT.JSON_CONTENT_TYPE_PATTERN.match(content_type):
        return data.encode()
    return orjson.dumps(data)


def _submission(
    function: str, event: BaseCloudEvent, given: dict[str, Any], payload: bytes, name_of: Namer
) -> Submission:
    task_id = task_id_of(function, event.get_source(), event.get_id())
    return Submission(payload, task_id, attributes=_attributes(given, name_of))


def _binary(function: str, request: Request, body: bytes) -> Submission:
    # The SDK reads the attributes from the headers; the body is the payload as it is, so
    # it is not handed over (the SDK would decode JSON data that is never used).
    message = HTTPMessage(headers=dict(request.headers), body=b"")
    event, given = _read(lambda reader: from_binary(message, FORMAT, reader), _header_name)
    return _submission(function, event, given, body, _header_name)


def _structured(function: str, raw: Any, prefix: str, max_bytes: int) -> Submission:
    """One event in the JSON format (`raw` is its parsed JSON); errors name its attributes
    after `prefix` (`[2].` in a batch)."""
    if not isinstance(raw, dict):
        field = prefix.rstrip(".") or "body"
        raise Malformed("an event in the JSON format is a JSON object", field=field)

    def name_of(attribute: str) -> str:
        return prefix + attribute

    message = HTTPMessage(headers={"content-type": STRUCTURED}, body=orjson.dumps(raw))
    event, given = _read(lambda reader: from_structured(message, FORMAT, reader), name_of)
    payload = _data_payload(event)
    if len(payload) > max_bytes:
        field = name_of("data")
        raise PayloadTooLarge(f"{field} is over {max_bytes} bytes", field=field)
    return _submission(function, event, given, payload, name_of)


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Malformed(f"the body is not JSON: {exc}", field="body") from exc


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def _submissions(node: NodeServices, name: str, request: Request) -> list[Submission]:
    max_bytes = node.settings.payload_max_bytes
    media_type = _media_type(request)
    if media_type == BATCH:
        items = _json(await read_body(request, max_bytes * 16))
        if not isinstance(items, list) or not 1 <= len(items) <= limits.BATCH_MAX_ITEMS:
            raise Malformed(
                f"a batch is a JSON array of 1…{limits.BATCH_MAX_ITEMS} events", field="body"
            )
        return [_structured(name, raw, f"[{i}].", max_bytes) for i, raw in enumerate(items)]
    if media_type == STRUCTURED:
        raw = _json(await read_body(request, max_bytes * 2))  # data_base64 is 4/3 of the data
        return [_structured(name, raw, "", max_bytes)]
    if media_type.startswith("application/cloudevents"):
        raise Malformed(
            f"{media_type} is not an event format taken here: use {STRUCTURED}, {BATCH} or "
            "the binary mode (ce-* headers)",
            field="Content-Type",
        )
    return [_binary(name, request, await read_body(request, max_bytes))]


async def receive(node: NodeServices, name: str, request: Request) -> Response:
    """`POST /v1/functions/{name}/cloudevents`: 202 with the task of the event (binary or
    structured mode) or `{"items": […]}` for a batch, in its order, like invocations:batch."""
    tenant = tenant_of(request)
    node.submitter.function(tenant, name)
    submissions = await _submissions(node, name, request)
    node.flow.admit(tenant, len(submissions))
    results = await node.submitter.submit(tenant, name, submissions, request.headers)
    items = [
        {"task_id": r.task_id, "status": r.status.value, "created": r.created} for r in results
    ]
    if _media_type(request) == BATCH:
        return json_response({"items": items}, 202)
    return json_response(items[0], 202)
