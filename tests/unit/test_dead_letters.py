"""Dead letters as pure rules: which endings are dead letters, the destination
`on_dead_letter` names (marked through the outbox), the list cursor; and the `CE_*` variables a
command gets from a CloudEvents task's attributes."""

from __future__ import annotations

import pytest

from asyncfn.domain.deadletters import (
    DeadLetterCursor,
    dead_letter_destination,
    is_dead_letter,
)
from asyncfn.domain.errors import Malformed
from asyncfn.domain.models import AsyncPolicy, Destination, FunctionSpec
from asyncfn.domain.policies import chain_loop, destinations_for
from asyncfn.domain.secrets import REDACTED, keep_stored, redact
from asyncfn.domain.states import TaskStatus
from asyncfn.runtime.command import attribute_env

S = TaskStatus
HOOK = {"type": "http", "url": "http://127.0.0.1/dead", "secret": "k"}


@pytest.mark.parametrize("status", list(S))
def test_only_failed_and_expired_are_dead_letters_and_only_when_asked(status: S) -> None:
    listed = AsyncPolicy(on_dead_letter={"type": "list"})
    assert is_dead_letter(listed, status) is (status in (S.FAILED, S.EXPIRED))
    assert not is_dead_letter(AsyncPolicy(), status)


def test_a_list_dead_letter_owes_no_delivery() -> None:
    policy = AsyncPolicy(on_dead_letter={"type": "list"})
    assert dead_letter_destination(policy) is None
    assert destinations_for(policy, S.FAILED) == []


def test_a_destination_dead_letter_is_delivered_marked_for_failed_and_expired() -> None:
    policy = AsyncPolicy(on_failure={**HOOK, "url": "http://127.0.0.1/fail"}, on_dead_letter=HOOK)
    for status in (S.FAILED, S.EXPIRED):
        found = destinations_for(policy, status)
        assert [(d.target, d.dead_letter) for d in found] == [
            ("http://127.0.0.1/fail", False),
            ("http://127.0.0.1/dead", True),
        ]
    assert destinations_for(policy, S.STOPPED) == []
    (dead,) = [d for d in destinations_for(policy, S.FAILED) if d.dead_letter]
    assert Destination.from_config(dead.to_config(), ()) == dead


def test_a_function_dead_letter_counts_in_chain_loops() -> None:
    policy = AsyncPolicy(on_dead_letter={"type": "function", "function": "b"})
    chains = {"b": AsyncPolicy(on_success={"type": "function", "function": "a"})}
    assert chain_loop("a", policy, chains) == ("on_dead_letter", "a → b → a")


def test_the_dead_letter_secret_is_redacted_and_kept() -> None:
    old = FunctionSpec(name="f", handler="m:h", async_policy=AsyncPolicy(on_dead_letter=HOOK))
    shown = redact(old.to_config())
    assert shown["async"]["on_dead_letter"]["secret"] == REDACTED
    sent = FunctionSpec.from_config(shown | {"env": {}})
    assert keep_stored(sent, old).async_policy.on_dead_letter == HOOK


def test_the_cursor_round_trips_and_refuses_anything_else() -> None:
    cursor = DeadLetterCursor(1_700_000_000.123456, 42)
    assert DeadLetterCursor.decode(cursor.encode()) == cursor
    for bad in ("", "42", "x~1", "1.0~", "1.0~-1", "nan~1", "inf~1", "1.0~99999999999999999999"):
        with pytest.raises(Malformed) as refused:
            DeadLetterCursor.decode(bad)
        assert refused.value.field == "cursor"


def test_attributes_become_ce_variables() -> None:
    attributes = {"id": "e1", "datacontenttype": "application/json", "my-ext": "a\0b"}
    assert attribute_env(attributes) == {
        "CE_ID": "e1",
        "CE_DATACONTENTTYPE": "application/json",
        "CE_MY_EXT": "a",
    }
    assert attribute_env(None) == {}
