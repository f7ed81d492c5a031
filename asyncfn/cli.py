"""`asyncfn`: `serve` starts a node; the other verbs mirror the HTTP API through `client.py`.

Every option also reads an `ASYNCFN_*` environment variable. Exit codes: 0 ok, 1 an API (or
connection) error, printed in red on stderr without a traceback, 2 a usage error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError

from asyncfn import (
    cli_deadletters,
    cli_functions,
    cli_operations,
    cli_tenants,
    cli_top,
    cli_triggers,
    node,
)
from asyncfn import cli_render as render
from asyncfn.cli_target import Target, connect, opt
from asyncfn.client import DEFAULT_URL
from asyncfn.settings import Settings

app = typer.Typer(
    name="asyncfn",
    help="Run functions asynchronously as tracked tasks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    url: Annotated[str, typer.Option(envvar="ASYNCFN_URL", help="The node's URL.")] = DEFAULT_URL,
    api_key: Annotated[
        str | None, typer.Option(envvar="ASYNCFN_API_KEY", help="Bearer API key.")
    ] = None,
) -> None:
    ctx.obj = Target(url, api_key)


@app.command()
def serve(
    host: Annotated[str | None, opt("HOST", "Address to listen on.")] = None,
    port: Annotated[int | None, opt("PORT", "Port to listen on.")] = None,
    data_dir: Annotated[Path | None, opt("DATA_DIR", "Folder of the node's data.")] = None,
    store: Annotated[str | None, opt("STORE", "Store URL; default SQLite in the data dir.")] = None,
    node_name: Annotated[str | None, opt("NODE_NAME", "This node's name.")] = None,
    role: Annotated[
        str | None,
        opt("ROLE", "all (default), api (the HTTP API only) or worker (runs tasks only)."),
    ] = None,
    api_url: Annotated[
        str | None, opt("API_URL", "Public URL of the API nodes, for handlers' context.client.")
    ] = None,
    max_instances: Annotated[
        int | None, opt("MAX_INSTANCES", "Most instance processes on this node, all functions.")
    ] = None,
    memory_budget_mb: Annotated[
        int | None,
        opt("MEMORY_BUDGET_MB", "Memory the node's instances may reserve; default 80% of RAM."),
    ] = None,
    label: Annotated[
        list[str] | None,
        typer.Option(
            help="A placement label KEY=VALUE of this node (repeatable); ASYNCFN_LABELS, a JSON"
            " object or k=v,k=v, is read by Settings."
        ),
    ] = None,
    deploy: Annotated[
        list[Path] | None,
        typer.Option(
            help="A folder of functions to deploy (repeatable); ASYNCFN_DEPLOY, a JSON list, "
            "is read by Settings."
        ),
    ] = None,
    log_level: Annotated[str | None, opt("LOG_LEVEL", "debug, info, warning, error.")] = None,
    log_format: Annotated[
        str | None, opt("LOG_FORMAT", "text, or json: one JSON object per line.")
    ] = None,
    group_commit: Annotated[
        bool | None,
        typer.Option(
            "--group-commit/--no-group-commit",
            envvar="ASYNCFN_GROUP_COMMIT",
            help="Share one transaction among concurrent writes (off only to measure it).",
        ),
    ] = None,
) -> None:
    """Start a node: the API, the engine and the runtime, until interrupted."""
    given: dict[str, Any] = {
        "host": host,
        "port": port,
        "data_dir": data_dir,
        "store": store,
        "node_name": node_name,
        "role": role,
        "api_url": api_url,
        "max_instances": max_instances,
        "memory_budget_mb": memory_budget_mb,
        "deploy": deploy or None,
        "labels": label or None,
        "log_level": log_level,
        "log_format": log_format,
        "group_commit": group_commit,
    }
    try:
        settings = Settings(**{k: v for k, v in given.items() if v is not None})
    except (ValidationError, SettingsError) as exc:
        render.error(f"invalid settings: {exc}")
        raise typer.Exit(2) from None
    node.serve(settings)


cli_functions.register(app)


def _payload(payload: str | None, file: Path | None) -> bytes:
    if payload is not None and file is not None:
        raise typer.BadParameter("give a PAYLOAD or --file, not both")
    if file is not None:
        try:
            return file.read_bytes()
        except OSError as exc:
            raise typer.BadParameter(str(exc), param_hint="--file") from None
    if payload == "-":
        return sys.stdin.buffer.read()
    return (payload or "").encode()


@app.command()
def invoke(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The function.")],
    payload: Annotated[
        str | None, typer.Argument(metavar="[PAYLOAD]", help="The payload; - reads stdin.")
    ] = None,
    file: Annotated[Path | None, opt("FILE", "Read the payload from a file.")] = None,
    async_: Annotated[bool, opt("ASYNC", "Submit a task and print its id.", "--async")] = False,
    wait: Annotated[bool, opt("WAIT", "With --async: wait and print the final task.")] = False,
    delay: Annotated[float | None, opt("DELAY", "Run no sooner than S seconds from now.")] = None,
    run_at: Annotated[str | None, opt("RUN_AT", "Run no sooner than T (RFC 3339).")] = None,
    task_id: Annotated[str | None, opt("TASK_ID", "The task's id (de-duplicates).")] = None,
    priority: Annotated[int | None, opt("PRIORITY", "Higher runs first.")] = None,
) -> None:
    """Invoke a function: sync by default (prints the result), or --async (prints the id)."""
    data = _payload(payload, file)
    if not async_:
        if wait or any(v is not None for v in (delay, run_at, task_id, priority)):
            raise typer.BadParameter(
                "--wait, --delay, --run-at, --task-id, --priority need --async"
            )
        with connect(ctx) as client:
            value = client.invoke(name, data)
        render.result(value)
        return
    with connect(ctx) as client:
        handle = client.invoke_async(
            name, data, task_id=task_id, delay_s=delay, run_at=run_at, priority=priority
        )
        if not wait:
            render.line(handle.task_id)
            return
        render.note(f"task {handle.task_id} {handle.status}; waiting")
        task = handle.wait()
    render.as_json(task)
    if task["status"] != "Succeeded":
        raise typer.Exit(1)


@app.command()
def tasks(
    ctx: typer.Context,
    function: Annotated[str | None, opt("FUNCTION", "Only this function's tasks.")] = None,
    status: Annotated[str | None, opt("STATUS", "Only tasks in this status.")] = None,
    limit: Annotated[int, opt("LIMIT", "How many, newest first.")] = 20,
) -> None:
    """List tasks, newest first."""
    with connect(ctx) as client:
        page = client.list_tasks(function=function, status=status, limit=limit)
    render.tasks_table(page["items"])
    if page.get("next_cursor"):
        render.note(f"more tasks than {limit}; raise --limit to see them")


@app.command()
def task(ctx: typer.Context, task_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """Show one task as JSON, events included; its deliveries are summed up on stderr."""
    with connect(ctx) as client:
        found = client.get_task(task_id)
    render.as_json(found)
    render.deliveries(found)


@app.command()
def logs(
    ctx: typer.Context,
    task_id: Annotated[str, typer.Argument(metavar="ID")],
    follow: Annotated[
        bool, opt("FOLLOW", "Keep printing until the task ends.", "-f", "--follow")
    ] = False,
) -> None:
    """Print a task's log lines: time, stream, line."""
    with connect(ctx) as client:
        if follow:
            for item in client.follow_logs(task_id):
                render.line(render.log_line(item))
            return
        after = 0
        while page := client.logs(task_id, after):
            for item in page:
                render.line(render.log_line(item))
            after = max(int(item["seq"]) for item in page)


TaskId = Annotated[str, typer.Argument(metavar="ID", help="The task.")]


def _show_status(answer: dict[str, Any]) -> None:
    render.line(f"{answer['task_id']} {answer['status']}")


@app.command()
def stop(ctx: typer.Context, task_id: TaskId) -> None:
    """Stop a task and wait for it to end; prints `ID STATUS` (Stopped, or still Stopping)."""
    with connect(ctx) as client:
        answer = client.stop(task_id)
    _show_status(answer)
    if answer["status"] != "Stopped":
        render.note(f"{task_id} is still stopping; `asyncfn task {task_id}` shows when it ends")


@app.command()
def suspend(ctx: typer.Context, task_id: TaskId) -> None:
    """Suspend a task until resumed; prints `ID STATUS`."""
    with connect(ctx) as client:
        _show_status(client.suspend(task_id))


@app.command()
def resume(ctx: typer.Context, task_id: TaskId) -> None:
    """Let a suspended task run again; prints `ID STATUS`."""
    with connect(ctx) as client:
        _show_status(client.resume(task_id))


@app.command()
def purge(ctx: typer.Context, task_id: TaskId) -> None:
    """Erase an ended task's payload, result, checkpoint and logs (its events stay); prints
    `ID purged AT`."""
    with connect(ctx) as client:
        answer = client.purge_task(task_id)
    render.line(f"{answer['task_id']} purged {answer['purged_at']}")
    render.note("erased: " + ", ".join(answer["purged"]))


@app.command()
def rerun(
    ctx: typer.Context,
    task_id: TaskId,
    new_task_id: Annotated[
        str | None, opt("TASK_ID", "The new task's id (de-duplicates).", "--task-id")
    ] = None,
) -> None:
    """Submit an ended task again, same function and payload; prints the new task's id."""
    with connect(ctx) as client:
        handle = client.rerun(task_id, task_id=new_task_id)
    render.line(handle.task_id)
    render.note(f"rerun of {task_id}: {handle.task_id} {handle.status}")


@app.command()
def schedules(ctx: typer.Context) -> None:
    """List the schedules with their next fire times."""
    with connect(ctx) as client:
        render.schedules_table(client.list_schedules())


@app.command()
def schedule(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The schedule.")],
    function: Annotated[str, typer.Option(help="The function each tick invokes.")],
    cron: Annotated[str | None, typer.Option(help="A cron expression, e.g. '*/5 * * * *'.")] = None,
    every: Annotated[int | None, typer.Option(help="Or every S seconds.", min=1)] = None,
    payload: Annotated[
        str | None, typer.Option(help="The payload as JSON (a JSON string is sent as text).")
    ] = None,
    timezone: Annotated[str, typer.Option(help="The IANA time zone of --cron.")] = "UTC",
    catch_up: Annotated[
        str, typer.Option(help="Ticks missed while no node ran: none, latest or all.")
    ] = "none",
    disable: Annotated[bool, typer.Option(help="Keep the schedule but do not fire it.")] = False,
) -> None:
    """Create or update a schedule that invokes a function on a cron expression or interval."""
    if (cron is None) == (every is None):
        raise typer.BadParameter("give exactly one of --cron and --every")
    config: dict[str, Any] = {
        "function": function,
        "cron": cron,
        "every_s": every,
        "timezone": timezone,
        "catch_up": catch_up,
        "enabled": not disable,
    }
    if payload is not None:
        try:
            config["payload"] = json.loads(payload)
        except ValueError:
            raise typer.BadParameter("not JSON", param_hint="--payload") from None
    with connect(ctx) as client:
        stored = client.put_schedule(name, **config)
    render.schedules_table([stored])


@app.command()
def unschedule(ctx: typer.Context, name: Annotated[str, typer.Argument(metavar="NAME")]) -> None:
    """Delete a schedule (the tasks it submitted stay)."""
    with connect(ctx) as client:
        client.delete_schedule(name)
    render.note(f"deleted schedule {name}")


cli_top.register(app)
app.add_typer(cli_triggers.app)
app.add_typer(cli_tenants.tenants_app)
app.add_typer(cli_tenants.keys_app)
app.add_typer(cli_deadletters.app)
cli_operations.register(app)


def main() -> None:
    """The `asyncfn` console script."""
    app(prog_name="asyncfn")
