"""`asyncfn top`: a live table of the caller's functions (queue, instances, rates, latencies,
limits), polled through the client every `--interval` seconds; `--once` prints one table."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich import box
from rich.live import Live
from rich.table import Table
from rich.text import Text

from asyncfn import cli_render as render
from asyncfn.cli_target import connect, opt
from asyncfn.client import Client, NotFoundError

COLUMNS = (
    "FUNCTION",
    "QUEUED",
    "DELAYED",
    "RUNNING",
    "INSTANCES",
    "SUBMIT/S",
    "FINISH/S",
    "WAIT P50/P99",
    "RUN P50/P99",
    "MAX CONC",
    "RATE LIMIT",
    "BUSIEST KEY",
)


def read_stats(client: Client) -> list[dict[str, Any]]:
    """Every function's stats, by name; a function deleted while it is read is left out."""
    found = []
    for function in sorted(client.list_functions(), key=lambda f: str(f.get("name"))):
        try:
            found.append(client.function_stats(str(function["name"])))
        except NotFoundError:
            continue
    return found


def _pair(latency: Mapping[str, Any] | None) -> str:
    latency = latency or {}
    return f"{render.duration(latency.get('p50'))} / {render.duration(latency.get('p99'))}"


def _rate(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, int | float) else "-"


def _limit(value: Any) -> str:
    return "-" if value is None else f"{value:g}"


def _busiest_key(keys: Any) -> str:
    """The first concurrency limit's busiest value: `value running/limit +waiting`."""
    if not keys or not keys[0].get("busiest"):
        return "-"
    first, top = keys[0], keys[0]["busiest"][0]
    return f"{top['value']} {top['running']}/{first['limit']} +{top['waiting']}"


def stats_table(stats: Iterable[Mapping[str, Any]], title: str | None = None) -> Table:
    """One row per function's stats answer (`GET /v1/functions/{name}/stats`)."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, title=title, title_justify="left")
    for name in COLUMNS:
        table.add_column(name, no_wrap=True, justify="left" if name == "FUNCTION" else "right")
    for item in stats:
        instances = item.get("instances") or {}
        rates = item.get("rates") or {}
        latency = item.get("latency_ms") or {}
        limits = item.get("limits") or {}
        table.add_row(
            Text(str(item.get("function"))),
            str(item.get("queued", 0)),
            str(item.get("delayed", 0)),
            str(item.get("running", 0)),
            f"{instances.get('busy', 0)}/{instances.get('total', 0)}",
            _rate(rates.get("submitted_per_s_1m")),
            _rate(rates.get("finished_per_s_1m")),
            _pair(latency.get("queue_wait")),
            _pair(latency.get("run")),
            _limit(limits.get("max_concurrency")),
            _limit(limits.get("rate_limit")),
            Text(_busiest_key(item.get("keys"))),
        )
    return table


def top(
    ctx: typer.Context,
    interval: Annotated[
        float,
        typer.Option(envvar="ASYNCFN_TOP_INTERVAL", help="Seconds between refreshes.", min=0.1),
    ] = 1.0,
    once: Annotated[bool, opt("TOP_ONCE", "Print one table and exit.", "--once")] = False,
) -> None:
    """A live table of your functions: queue, instances, rates, latencies and limits."""
    with connect(ctx) as client:
        if once:
            render.console().print(stats_table(read_stats(client)))
            return
        try:
            with Live(console=render.console(), auto_refresh=False) as live:
                while True:
                    at = datetime.now(UTC).strftime("%H:%M:%S")
                    title = f"asyncfn top · every {interval:g} s · {at} UTC · Ctrl-C quits"
                    live.update(stats_table(read_stats(client), title), refresh=True)
                    time.sleep(interval)
        except KeyboardInterrupt:
            return


def register(app: typer.Typer) -> None:
    """Add `top` to the root command."""
    app.command()(top)
