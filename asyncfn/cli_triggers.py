"""`asyncfn triggers`: list, put, get and delete event-source triggers through the client."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from asyncfn import cli_render as render
from asyncfn.cli_target import connect

app = typer.Typer(name="triggers", help="Event sources that turn messages and files into tasks.")

TriggerName = Annotated[str, typer.Argument(metavar="NAME", help="The trigger.")]


def _setting(item: str) -> tuple[str, Any]:
    """`KEY=VALUE`; VALUE is read as JSON when it parses (numbers, booleans, lists), else text."""
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise typer.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--set")
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return key, value


@app.command("list")
def list_triggers(ctx: typer.Context) -> None:
    """The triggers with what each does on the node: phase, lag, rate, last error."""
    with connect(ctx) as client:
        render.triggers_table(client.list_triggers())


@app.command("put")
def put_trigger(
    ctx: typer.Context,
    name: TriggerName,
    function: Annotated[str, typer.Option(help="The function each message invokes.")],
    type_: Annotated[str, typer.Option("--type", help="nats, redis-stream, amqp or directory.")],
    settings: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="A source setting KEY=VALUE (repeatable): stream=orders, path=/srv/in, ...",
        ),
    ] = None,
    max_queue_depth: Annotated[
        int | None, typer.Option(help="Stop pulling while this many tasks wait.", min=1)
    ] = None,
    disable: Annotated[bool, typer.Option(help="Keep the trigger but do not consume.")] = False,
) -> None:
    """Create or update a trigger."""
    config: dict[str, Any] = dict(_setting(item) for item in settings or [])
    config.update(function=function, type=type_, enabled=not disable)
    if max_queue_depth is not None:
        config["max_queue_depth"] = max_queue_depth
    with connect(ctx) as client:
        stored = client.put_trigger(name, **config)
    render.triggers_table([stored])


@app.command("get")
def get_trigger(ctx: typer.Context, name: TriggerName) -> None:
    """The trigger's config and status as JSON."""
    with connect(ctx) as client:
        render.as_json(client.get_trigger(name))


@app.command("delete")
def delete_trigger(ctx: typer.Context, name: TriggerName) -> None:
    """Delete a trigger (the tasks it submitted stay)."""
    with connect(ctx) as client:
        client.delete_trigger(name)
    render.note(f"deleted trigger {name}")
