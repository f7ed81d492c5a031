"""`asyncfn deploy --debounce / --throttle`: the flags' text as the API's objects, read from the
right so a key may hold colons; bad text is a usage error naming the flag."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from asyncfn import cli
from asyncfn.cli_shaping import debounce_body, throttle_body
from tests.unit.fakeapi import FakeApi

runner = CliRunner()


def test_debounce_text() -> None:
    assert debounce_body("/doc_id:2:30") == {"key": "/doc_id", "window_s": 2.0, "max_wait_s": 30.0}
    assert debounce_body("header:X-Doc:0.5:5")["key"] == "header:X-Doc"


@pytest.mark.parametrize(
    ("text", "body"),
    [
        ("tenant:5", {"key": "tenant", "per_s": 5.0}),
        ("header:X-Customer:5", {"key": "header:X-Customer", "per_s": 5.0}),
        ("header:X-Customer:5:10", {"key": "header:X-Customer", "per_s": 5.0, "burst": 10}),
        ("/customer:0.5", {"key": "/customer", "per_s": 0.5}),
    ],
)
def test_throttle_text(text: str, body: dict[str, object]) -> None:
    assert throttle_body(text) == body


def test_deploy_sends_debounce_and_throttle(api: FakeApi) -> None:
    result = runner.invoke(
        cli.app,
        ["--url", api.url, "deploy", "idx", "--debounce", "/doc_id:2:30", "--throttle", "tenant:5"],
    )
    assert result.exit_code == 0, result.output
    sent = api.requests("PUT", "/v1/functions/idx")[0].json()
    assert sent["debounce"] == {"key": "/doc_id", "window_s": 2.0, "max_wait_s": 30.0}
    assert sent["throttle"] == {"key": "tenant", "per_s": 5.0}


@pytest.mark.parametrize(
    ("flag", "text"), [("--debounce", "/doc:2"), ("--debounce", ":1:2"), ("--throttle", "tenant")]
)
def test_bad_text_is_a_usage_error(api: FakeApi, flag: str, text: str) -> None:
    result = runner.invoke(cli.app, ["--url", api.url, "deploy", "idx", flag, text])
    assert result.exit_code == 2
    assert flag in result.output
    assert api.requests("PUT", "/v1/functions/idx") == []
