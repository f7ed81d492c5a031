"""How the `asyncfn` command shows things: tables, JSON, log lines and errors.

Data goes to stdout (plain when piped: no colour, no wrapping of tables at 80 columns);
notes and errors go to stderr. User text is never read as rich markup.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

PIPED_WIDTH = 200
STATUS_STYLES = {
    "Enqueued": "cyan",
    "Running": "yellow",
    "Retrying": "magenta",
    "Suspended": "blue",
    "Stopping": "yellow",
    "Succeeded": "green",
    "Failed": "red",
    "Stopped": "dim",
    "Expired": "dim",
    "Invalid": "red",
}


def _console(*, stderr: bool = False) -> Console:
    console = Console(stderr=stderr, highlight=False)
    if not console.is_terminal:
        console.width = max(console.width, PIPED_WIDTH)
    return console


def console() -> Console:
    """The stdout console (plain and wide when piped), for tables and live views."""
    return _console()


def error(message: str, detail: str | None = None) -> None:
    """An error in red on stderr, with an optional dimmed detail (a traceback) under it."""
    console = _console(stderr=True)
    console.print(Text(f"error: {message}", style="bold red"), soft_wrap=True)
    if detail:
        console.print(Text(detail.rstrip(), style="dim"), soft_wrap=True)


def note(message: str) -> None:
    """A remark on stderr, so stdout stays data."""
    _console(stderr=True).print(Text(message, style="green"), soft_wrap=True)


def line(text: str) -> None:
    """One plain line on stdout (an id, a log line): no markup, no wrapping."""
    typer.echo(text)


def as_json(value: Any) -> None:
    """Pretty JSON on stdout (coloured on a terminal)."""
    _console().print_json(json.dumps(value, ensure_ascii=False))


def result(value: Any) -> None:
    """A handler's result: a string as it is, nothing for None, anything else as JSON."""
    if isinstance(value, str):
        line(value)
    elif value is not None:
        as_json(value)


def when(value: Any, *, date: bool = True) -> str:
    """A time (RFC 3339 text or POSIX seconds) shortened to UTC `YYYY-MM-DD HH:MM:SS`."""
    if value is None or value == "":
        return "-"
    try:
        if isinstance(value, int | float):
            at = datetime.fromtimestamp(value, UTC)
        else:
            at = datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)
    except (ValueError, OverflowError):
        return str(value)
    if date:
        return at.strftime("%Y-%m-%d %H:%M:%S")
    return at.strftime("%H:%M:%S.%f")[:-3]


def duration(ms: Any) -> str:
    if not isinstance(ms, int | float):
        return "-"
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.2f} s"


def log_line(item: Mapping[str, Any]) -> str:
    """`time stream line` for one log line."""
    return f"{when(item.get('at'), date=False)} {item.get('stream', '-'):<6} {item.get('line', '')}"


def _status(status: Any) -> Text:
    return Text(str(status), style=STATUS_STYLES.get(str(status), ""))


def tasks_table(tasks: Iterable[Mapping[str, Any]]) -> None:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    table.add_column("ID", no_wrap=True)
    table.add_column("FUNCTION", no_wrap=True)
    table.add_column("STATUS", no_wrap=True)
    table.add_column("ATTEMPT", justify="right")
    table.add_column("CREATED", no_wrap=True)
    table.add_column("DURATION", justify="right")
    for task in tasks:
        attempt = f"{task.get('attempt', 0)}/{task.get('max_attempts', '?')}"
        table.add_row(
            Text(str(task.get("id"))),
            Text(str(task.get("function"))),
            _status(task.get("status")),
            attempt,
            when(task.get("created_at")),
            duration(task.get("duration_ms")),
        )
    _console().print(table)


def deliveries(task: Mapping[str, Any]) -> None:
    """A task's destination deliveries, one line each on stderr (stdout keeps the JSON)."""
    for item in task.get("deliveries") or ():
        status = str(item.get("status"))
        text = Text(f"delivery {item.get('id')} → {item.get('type')} {item.get('target')}: ")
        text.append(status, style={"delivered": "green", "dead": "red"}.get(status, "yellow"))
        text.append(f" after {item.get('attempts', 0)} attempt(s)")
        if item.get("last_error"):
            text.append(f" ({item['last_error']})", style="dim")
        _console(stderr=True).print(text, soft_wrap=True)


def functions_table(functions: Iterable[Mapping[str, Any]]) -> None:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    columns = ("NAME", "RUNTIME", "RUNS", "CODE", "TIMEOUT", "MEMORY", "INSTANCES", "QUEUE")
    for name in (*columns, "UPDATED"):
        table.add_column(name, no_wrap=name != "RUNS")
    for function in functions:
        runs = function.get("handler") or " ".join(function.get("command") or []) or "-"
        sha256 = function.get("code_sha256")
        instances = f"{function.get('min_instances', 0)}-{function.get('max_instances', '?')}"
        table.add_row(
            Text(str(function.get("name"))),
            str(function.get("runtime", "-")),
            Text(str(runs)),
            sha256[:12] if isinstance(sha256, str) else "-",
            f"{function.get('timeout_s', '-')} s",
            f"{function.get('memory_mb', '-')} MB",
            instances,
            Text("paused", style="blue") if function.get("paused") else "running",
            when(function.get("updated_at")),
        )
    _console().print(table)


def schedules_table(schedules: Iterable[Mapping[str, Any]]) -> None:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    for name in ("NAME", "FUNCTION", "WHEN", "ENABLED", "NEXT FIRE"):
        table.add_column(name, no_wrap=True)
    for schedule in schedules:
        cron, every_s = schedule.get("cron"), schedule.get("every_s")
        timing = f"{cron} ({schedule.get('timezone')})" if cron else f"every {every_s} s"
        table.add_row(
            Text(str(schedule.get("name"))),
            Text(str(schedule.get("function"))),
            Text(timing),
            "yes" if schedule.get("enabled") else Text("no", style="dim"),
            when(schedule.get("next_fire_at")),
        )
    _console().print(table)


def triggers_table(triggers: Iterable[Mapping[str, Any]]) -> None:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    for name in ("NAME", "FUNCTION", "TYPE", "PHASE", "LAG", "RATE/S", "CREATED", "LAST ERROR"):
        table.add_column(name, no_wrap=name != "LAST ERROR")
    styles = {"running": "green", "holding": "yellow", "failing": "red", "disabled": "dim"}
    for trigger in triggers:
        status = trigger.get("status") or {}
        phase = str(status.get("phase", "-"))
        lag = status.get("lag")
        table.add_row(
            Text(str(trigger.get("name"))),
            Text(str(trigger.get("function"))),
            Text(str(trigger.get("type"))),
            Text(phase, style=styles.get(phase, "")),
            "-" if lag is None else str(lag),
            f"{status.get('rate_per_s', 0):g}",
            str(status.get("created", 0)),
            Text(str(status.get("last_error") or ""), style="red"),
        )
    _console().print(table)


def tenants_table(tenants: Iterable[Mapping[str, Any]]) -> None:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    for name in ("TENANT", "CREATED", "MAX RUNNING", "SUBMIT RATE", "SUBMIT BURST"):
        table.add_column(name, no_wrap=True)
    for tenant in tenants:
        quotas = (tenant.get(k) for k in ("max_running", "submit_rate", "submit_burst"))
        table.add_row(
            Text(str(tenant.get("name"))),
            when(tenant.get("created_at")),
            *("-" if q is None else f"{q:g}" for q in quotas),
        )
    _console().print(table)


def keys_table(keys: Iterable[Mapping[str, Any]]) -> None:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    for name in ("ID", "TENANT", "NAME", "CREATED", "STATE"):
        table.add_column(name, no_wrap=True)
    for key in keys:
        active = bool(key.get("active"))
        table.add_row(
            Text(str(key.get("id"))),
            Text(str(key.get("tenant"))),
            Text(str(key.get("name") or "")),
            when(key.get("created_at")),
            "active" if active else Text(f"revoked {when(key.get('revoked_at'))}", style="dim"),
        )
    _console().print(table)
