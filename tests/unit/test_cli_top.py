"""`asyncfn top`, `deploy`'s flow-control flags, `tenants limits` and a 429 through the CLI,
against the HTTP fake of the API extended here with stats, tenant and rate-limited routes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from asyncfn import cli
from tests.unit.fakeapi import Answer, FakeApi, Seen, error

runner = CliRunner()


def stats_of(name: str, **fields: Any) -> dict[str, Any]:
    """A stats answer shaped like the node's."""
    return {
        "function": name,
        "queued": 3,
        "delayed": 2,
        "running": 1,
        "instances": {"total": 2, "idle": 1, "busy": 1, "starting": 0, "target": 2},
        "autoscaler": {"decisions": []},
        "limits": {"max_concurrency": 8, "rate_limit": 2.5, "rate_burst": None},
        "latency_ms": {
            "queue_wait": {"p50": 12.0, "p95": 40.0, "p99": 1500.0},
            "run": {"p50": None, "p95": None, "p99": None},
        },
        "rates": {"submitted_per_s_1m": 0.5, "finished_per_s_1m": 0.25},
        **fields,
    }


class StatsApi(FakeApi):
    """The fake, plus `/stats` of each function, `PATCH /v1/tenants/{t}` and a 429 mode."""

    def __init__(self) -> None:
        super().__init__()
        self.stats: dict[str, dict[str, Any]] = {}
        self.tenants: dict[str, dict[str, Any]] = {}
        self.limited = False

    def start(self) -> None:
        super().start()
        assert self._server is not None
        handler: Any = self._server.RequestHandlerClass
        handler.do_PATCH = handler._handle  # the base fake answers no PATCH

    def route(self, req: Seen) -> Answer:
        parts = req.path.strip("/").split("/")
        if self.limited and req.method == "POST":
            body = error(429, "rate_limited", "over the submit rate", retry_after_s=0.4).body
            return Answer(429, body, {"Retry-After": "1"})
        match (req.method, parts):
            case ("GET", ["v1", "functions", name, "stats"]) if name in self.stats:
                return Answer(200, self.stats[name])
            case ("GET", ["v1", "functions", name, "stats"]):
                return error(404, "function_not_found", f"function {name!r} not found")
            case ("PATCH", ["v1", "tenants", name]) if name in self.tenants:
                self.tenants[name].update(req.json())
                return Answer(200, self.tenants[name])
        return super().route(req)


@pytest.fixture(name="fake")
def fake_fixture() -> Iterator[StatsApi]:
    fake = StatsApi()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


def run(api: FakeApi, *args: str) -> Result:
    return runner.invoke(cli.app, ["--url", api.url, *args])


def test_top_once_prints_one_row_per_function_with_queue_rates_latency_and_limits(
    fake: StatsApi,
) -> None:
    for name in ("resize", "email"):
        fake.add_function(name)
        fake.stats[name] = stats_of(name)

    result = run(fake, "top", "--once")

    assert result.exit_code == 0, result.output
    header, _rule, *rows = [line for line in result.stdout.splitlines() if line.strip()]
    for column in ("QUEUED", "DELAYED", "INSTANCES", "SUBMIT/S", "WAIT P50/P99", "RATE LIMIT"):
        assert column in header
    assert [row.split()[0] for row in rows] == ["email", "resize"]
    cells = rows[1].split()
    assert cells[1:5] == ["3", "2", "1", "1/2"]
    assert (cells[5], cells[6]) == ("0.50", "0.25")
    assert "12 ms / 1.50 s" in rows[1]
    assert "- / -" in rows[1]
    assert cells[-3:] == ["8", "2.5", "-"]  # no concurrency keys: no busiest key


def test_top_shows_the_busiest_value_of_a_keyed_function(fake: StatsApi) -> None:
    fake.add_function("resize")
    busiest = [{"value": "acme", "running": 2, "waiting": 130}]
    keys = [{"key": "/customer_id", "limit": 2, "strategy": "queue", "busiest": busiest}]
    fake.stats["resize"] = {**stats_of("resize"), "keys": keys}

    result = run(fake, "top", "--once")

    assert result.exit_code == 0, result.output
    assert "BUSIEST KEY" in result.stdout
    assert "acme 2/2 +130" in result.stdout


def test_top_once_skips_a_function_deleted_between_the_list_and_its_stats(
    fake: StatsApi,
) -> None:
    fake.add_function("gone")
    fake.add_function("here")
    fake.stats["here"] = stats_of("here")

    result = run(fake, "top", "--once")

    assert result.exit_code == 0, result.output
    assert "here" in result.stdout
    assert "gone" not in result.stdout


def test_top_polls_stats_every_interval_until_interrupted(
    fake: StatsApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.add_function("resize")
    fake.stats["resize"] = stats_of("resize")
    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr("asyncfn.cli_top.time.sleep", sleep)

    result = run(fake, "top", "--interval", "0.5")

    assert result.exit_code == 0, result.output
    assert pauses == [0.5, 0.5]
    assert len(fake.requests("GET", "/v1/functions/resize/stats")) == 2


def test_deploy_sends_the_flow_control_flags(fake: StatsApi) -> None:
    result = run(
        fake,
        "deploy",
        "resize",
        "--handler",
        "main:handler",
        "--max-concurrency",
        "5",
        "--rate-limit",
        "2.5",
        "--rate-burst",
        "10",
    )

    assert result.exit_code == 0, result.output
    body = fake.requests("PUT", "/v1/functions/resize")[-1].json()
    assert (body["max_concurrency"], body["rate_limit"], body["rate_burst"]) == (5, 2.5, 10)


def test_deploy_leaves_out_flow_control_flags_not_given(fake: StatsApi) -> None:
    assert run(fake, "deploy", "resize", "--handler", "main:handler").exit_code == 0

    body = fake.requests("PUT", "/v1/functions/resize")[-1].json()
    assert not {"max_concurrency", "rate_limit", "rate_burst"} & set(body)


def test_tenants_limits_sends_only_the_quotas_given_and_null_for_cleared_ones(
    fake: StatsApi,
) -> None:
    fake.tenants["acme"] = {
        "name": "acme",
        "created_at": "2025-01-02T03:04:05Z",
        "max_running": 4,
        "submit_rate": 10.0,
        "submit_burst": None,
    }

    result = run(fake, "tenants", "limits", "acme", "--submit-rate", "2.5", "--clear-max-running")

    assert result.exit_code == 0, result.output
    assert fake.requests("PATCH", "/v1/tenants/acme")[-1].json() == {
        "max_running": None,
        "submit_rate": 2.5,
    }
    assert "2.5" in result.stdout


def test_tenants_limits_refuses_a_quota_and_its_clear_flag_together(fake: StatsApi) -> None:
    result = run(fake, "tenants", "limits", "acme", "--max-running", "3", "--clear-max-running")

    assert result.exit_code == 2
    assert not fake.requests("PATCH", "/v1/tenants")


def test_a_rate_limited_invocation_prints_when_to_retry_and_exits_1(fake: StatsApi) -> None:
    fake.add_function("echo")
    fake.limited = True

    result = run(fake, "invoke", "echo", "x", "--async")

    assert result.exit_code == 1
    assert "over the submit rate (rate_limited); retry in 0.4 s" in result.stderr
