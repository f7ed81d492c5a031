"""`asyncfn deploy --concurrency`: KEY=LIMIT[:STRATEGY] read from the right (keys may hold
colons), a bare number as the tasks one instance runs, bad text refused naming the flag."""

from __future__ import annotations

import pytest
import typer

from asyncfn.cli_keys import concurrency_flags


def test_limits_and_a_bare_number() -> None:
    per_instance, limits = concurrency_flags(
        ["/customer_id=2", "header:X-Team=5:cancel_oldest", "4", "tenant=1:queue"]
    )
    assert per_instance == 4
    assert limits == [
        {"key": "/customer_id", "limit": 2},
        {"key": "header:X-Team", "limit": 5, "strategy": "cancel_oldest"},
        {"key": "tenant", "limit": 1, "strategy": "queue"},
    ]


def test_a_pointer_holding_an_equals_sign_keeps_it() -> None:
    assert concurrency_flags(["/a=b=3"])[1] == [{"key": "/a=b", "limit": 3}]


@pytest.mark.parametrize("text", ["/customer_id", "=2", "/c=two", "/c=2:sometimes", "/c=-1"])
def test_bad_text_is_refused_naming_the_flag(text: str) -> None:
    with pytest.raises(typer.BadParameter) as caught:
        concurrency_flags([text])
    assert caught.value.param_hint == "--concurrency"
