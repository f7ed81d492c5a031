"""Key expressions: what a concurrency limit, a debounce or a throttle groups tasks by, and the
value one task's submission gives each.

An expression is one of:
- `/a/b/0`: a JSON pointer (RFC 6901) into the payload, read as JSON;
- `tenant`: the task's tenant;
- `header:<Name>`: an HTTP header of the submission (case-insensitive).

A value is the text of a JSON string, the compact JSON of anything else, and `""` when the
payload is not JSON, the pointer finds nothing or the header is absent: such tasks share the
empty key, so a limit never lets them through unlimited.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from asyncfn.domain.errors import InvalidInput

KEY_EXPR_MAX_LEN = 256
KEY_VALUE_MAX_LEN = 256
"""A longer value is cut to this many characters (keys are for grouping, not for data)."""
HEADER_PREFIX = "header:"
_MISSING = object()


def check_expression(expr: str, field: str) -> str:
    """`expr` when it is a valid key expression; InvalidInput naming `field` otherwise."""
    if not expr or len(expr) > KEY_EXPR_MAX_LEN:
        raise InvalidInput(f"a key is 1 to {KEY_EXPR_MAX_LEN} characters", field=field)
    if expr == "tenant":
        return expr
    if expr.startswith(HEADER_PREFIX):
        name = expr[len(HEADER_PREFIX) :]
        if not name or not all(c.isalnum() or c in "-_" for c in name):
            raise InvalidInput(
                "a header key is header:<Name>, the name made of letters, digits, - and _",
                field=field,
            )
        return expr
    if expr.startswith("/"):
        for token in expr[1:].split("/"):
            if "~" in token.replace("~0", "").replace("~1", ""):
                raise InvalidInput(
                    f"invalid JSON pointer {expr!r}: ~ must be followed by 0 or 1", field=field
                )
        return expr
    raise InvalidInput(
        "a key is a JSON pointer into the payload (/customer_id), tenant, or header:<Name>",
        field=field,
    )


class KeyReader:
    """Evaluates key expressions over one submission, parsing its payload at most once."""

    __slots__ = ("_document", "_headers", "_payload", "_tenant")

    def __init__(self, payload: bytes, tenant: str, headers: Mapping[str, str] | None) -> None:
        self._payload = payload
        self._tenant = tenant
        self._headers = headers
        self._document: Any = _MISSING

    def value(self, expr: str) -> str:
        if expr == "tenant":
            return self._tenant
        if expr.startswith(HEADER_PREFIX):
            name = expr[len(HEADER_PREFIX) :]
            found = None if self._headers is None else _header(self._headers, name)
            return _text(found) if found is not None else ""
        return _text(_point(self._parsed(), expr))

    def values(self, exprs: Sequence[str]) -> tuple[str, ...]:
        return tuple(self.value(e) for e in exprs)

    def _parsed(self) -> Any:
        if self._document is _MISSING:
            try:
                self._document = orjson.loads(self._payload)
            except orjson.JSONDecodeError:
                self._document = None
        return self._document


def _header(headers: Mapping[str, str], name: str) -> str | None:
    found = headers.get(name.lower())
    if found is None:
        found = headers.get(name)
    return found


def _point(document: Any, pointer: str) -> Any:
    """What the JSON pointer names in `document`; None when nothing is there."""
    node = document
    for raw in pointer[1:].split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict):
            if token not in node:
                return None
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return None
    return node


def _text(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return text[:KEY_VALUE_MAX_LEN]
