"""Destinations: which a finished task goes to, the webhook signature, delivery backoff, and
function chains that would loop."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from asyncfn.domain.models import AsyncPolicy, Destination
from asyncfn.domain.policies import chain_loop, delivery_next_at, destinations_for
from asyncfn.domain.states import TaskStatus
from asyncfn.engine.deliverer import chain_depth, signature

S = TaskStatus
HOOK = {"type": "http", "url": "http://127.0.0.1/hook", "secret": "k"}


def chained(target: str, **extra: object) -> dict[str, object]:
    return {"type": "function", "function": target, **extra}


def test_no_destinations_by_default() -> None:
    for status in S:
        assert destinations_for(AsyncPolicy(), status) == []


@pytest.mark.parametrize(
    ("status", "targets"),
    [
        (S.SUCCEEDED, ["http://127.0.0.1/hook"]),
        (S.FAILED, ["after"]),
        (S.EXPIRED, ["after"]),
        (S.STOPPED, []),
        (S.INVALID, []),
        (S.RUNNING, []),
    ],
)
def test_on_success_and_on_failure_default_statuses(status: S, targets: list[str]) -> None:
    policy = AsyncPolicy(on_success=HOOK, on_failure=chained("after"))
    assert [d.target for d in destinations_for(policy, status)] == targets


def test_statuses_choose_which_endings_a_destination_receives() -> None:
    policy = AsyncPolicy(on_failure={**HOOK, "statuses": ["Stopped", "Invalid", "Failed"]})
    assert [d.type for d in destinations_for(policy, S.STOPPED)] == ["http"]
    assert destinations_for(policy, S.EXPIRED) == []
    (hook,) = destinations_for(policy, S.INVALID)
    assert hook == Destination("http", (S.STOPPED, S.INVALID, S.FAILED), hook.url, "k")


def test_a_destination_keeps_its_config_through_the_outbox() -> None:
    (hook,) = destinations_for(AsyncPolicy(on_success=HOOK), S.SUCCEEDED)
    assert Destination.from_config(hook.to_config(), ()) == hook


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body = b'{"id":"t1"}'
    expected = hmac.new(b"s3cret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature("s3cret", 1_700_000_000, body) == f"sha256={expected}"
    assert signature("other", 1_700_000_000, body) != f"sha256={expected}"


def test_delivery_backoff_doubles_from_the_base_and_caps_at_ten_minutes() -> None:
    created = 1_000.0
    delays = [delivery_next_at(1.0, n, created, created) for n in range(1, 13)]
    assert [d - created for d in delays if d is not None] == [
        1,
        2,
        4,
        8,
        16,
        32,
        64,
        128,
        256,
        512,
        600,
        600,
    ]


def test_a_delivery_is_dead_a_day_after_it_was_created() -> None:
    created = 1_000.0
    assert delivery_next_at(1.0, 20, created, created + 86_000) == created + 86_400
    assert delivery_next_at(1.0, 20, created, created + 86_400) is None


def test_chain_depth_comes_from_a_chained_payload() -> None:
    assert chain_depth(b'{"id": "t", "chain_depth": 3}') == 3
    assert chain_depth(b"not json") == 0
    assert chain_depth(b"[1, 2]") == 0
    assert chain_depth(b'{"chain_depth": "x"}') == 0


def test_chain_loops_are_found_through_other_functions() -> None:
    others = {
        "b": AsyncPolicy(on_failure=chained("c")),
        "c": AsyncPolicy(on_success=chained("a")),
        "d": AsyncPolicy(on_success=HOOK),
    }
    assert chain_loop("a", AsyncPolicy(on_success=chained("b")), others) == (
        "on_success",
        "a → b → c → a",
    )
    assert chain_loop("a", AsyncPolicy(on_failure=chained("a")), {}) == ("on_failure", "a → a")
    assert chain_loop("a", AsyncPolicy(on_success=chained("d")), others) is None
    assert chain_loop("a", AsyncPolicy(on_success=chained("missing")), others) is None
    assert chain_loop("x", AsyncPolicy(on_success=chained("b")), others) is None
