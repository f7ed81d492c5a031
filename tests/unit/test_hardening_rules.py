"""The pure rules of hardening: webhook allow-list matching and keeping redacted secrets."""

from __future__ import annotations

import pytest

from asyncfn.domain.allowlist import parse_rule, refused_destination, url_allowed
from asyncfn.domain.errors import InvalidInput
from asyncfn.domain.models import AsyncPolicy, FunctionSpec
from asyncfn.domain.secrets import REDACTED, keep_stored, redact

ALLOW = ["hooks.example.com", "*.corp.example:8443", "[::1]:9000", "10.0.0.5"]


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://hooks.example.com/x", True),
        ("http://HOOKS.Example.com.:8080/x", True),  # any port, case and trailing dot ignored
        ("https://a.corp.example:8443/", True),
        ("https://a.b.corp.example:8443/", True),
        ("https://corp.example:8443/", False),  # the wildcard is for names under it
        ("https://a.corp.example/", False),  # 443, not 8443
        ("http://[::1]:9000/", True),
        ("http://[::1]:9001/", False),
        ("http://10.0.0.5:1/", True),
        ("http://evil.com/", False),
        ("http://hooks.example.com.evil.com/", False),
        ("http://hooks.example.com@evil.com/", False),  # userinfo is not the host
        ("http://hooks.example.com:notaport/", False),
    ],
)
def test_url_allowed(url: str, allowed: bool) -> None:
    assert url_allowed(url, ALLOW) is allowed


def test_an_empty_list_allows_any_host() -> None:
    assert url_allowed("http://anything.example/", [])


@pytest.mark.parametrize("entry", ["bad host", "a.com:x", "a.com:0", "*.", "http://a.com", ""])
def test_bad_entries_are_refused(entry: str) -> None:
    with pytest.raises(ValueError, match="allow-list entry"):
        parse_rule(entry)


def test_refused_destination_names_the_field() -> None:
    hook = {"type": "http", "url": "https://evil.com/", "secret": "k"}
    chain = {"type": "function", "function": "g"}
    assert refused_destination({"on_success": chain, "on_failure": hook}, ALLOW) == (
        "async.on_failure.url",
        "https://evil.com/ is not on this node's webhook allow-list (" + ", ".join(ALLOW) + ")",
    )
    assert refused_destination({"on_success": chain, "on_failure": None}, ALLOW) is None


def spec(env: dict[str, str], secret: str | None = None) -> FunctionSpec:
    hook = {"type": "http", "url": "https://h/", "secret": secret} if secret else None
    return FunctionSpec(name="f", handler="m:h", env=env, async_policy=AsyncPolicy(on_success=hook))


def test_redact_hides_every_value_and_keeps_the_names() -> None:
    shown = redact(spec({"A": "1", "B": ""}, secret="k").to_config())
    assert shown["env"] == {"A": REDACTED, "B": REDACTED}
    assert shown["async"]["on_success"]["secret"] == REDACTED
    assert shown["async"]["on_success"]["url"] == "https://h/"


def test_keep_stored_replaces_the_marker_with_the_stored_value() -> None:
    old = spec({"A": "secret-a", "B": "secret-b"}, secret="k")
    new = keep_stored(spec({"A": REDACTED, "C": "new"}, secret=REDACTED), old)
    assert new.env == {"A": "secret-a", "C": "new"}  # B left out: removed
    assert new.async_policy.on_success is not None
    assert new.async_policy.on_success["secret"] == "k"
    unchanged = spec({"A": "given"})
    assert keep_stored(unchanged, old) is unchanged


@pytest.mark.parametrize(
    ("new", "old", "field"),
    [
        (spec({"A": REDACTED}), None, "env.A"),
        (spec({"A": REDACTED}), spec({"B": "x"}), "env.A"),
        (spec({}, secret=REDACTED), spec({}), "async.on_success.secret"),
    ],
)
def test_the_marker_without_a_stored_value_names_the_field(
    new: FunctionSpec, old: FunctionSpec | None, field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        keep_stored(new, old)
    assert caught.value.field == field
