"""`asyncfn stop-all | rerun-all | purge-all` (a bulk operation over a task filter: the count
first, a confirmation, then its progress bar) and `asyncfn operations get | list`."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from asyncfn import cli_render as render
from asyncfn.cli_target import connect
from asyncfn.client import Client
from asyncfn.client_operations import Kind, task_filter

app = typer.Typer(name="operations", help="Bulk operations (stop-all, rerun-all, purge-all).")

POLL_S = 0.25
VERBS = {"stop": "stop", "rerun": "rerun", "purge": "purge"}

Function = Annotated[str | None, typer.Option(help="Only this function's tasks.")]
Status = Annotated[list[str] | None, typer.Option(help="Only tasks in this status (repeatable).")]
Key = Annotated[str | None, typer.Option(help="Only tasks with this key value.")]
Label = Annotated[
    list[str] | None, typer.Option(help="Only tasks whose attribute NAME is VALUE: NAME=VALUE.")
]
After = Annotated[str | None, typer.Option(help="Only tasks created after (RFC 3339).")]
Before = Annotated[str | None, typer.Option(help="Only tasks created before (RFC 3339).")]
Everything = Annotated[bool, typer.Option("--all", help="Every task (no other filter needed).")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Print the count only.")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
NoWait = Annotated[bool, typer.Option("--no-wait", help="Print the operation and return.")]


def _labels(pairs: list[str] | None) -> dict[str, str] | None:
    if not pairs:
        return None
    labels = {}
    for pair in pairs:
        name, eq, value = pair.partition("=")
        if not eq or not name:
            raise typer.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="--label")
        labels[name] = value
    return labels


def _bulk(client: Client, kind: Kind, filter: dict[str, Any], dry_run: bool) -> Any:
    call = {"stop": client.bulk_stop, "rerun": client.bulk_rerun, "purge": client.bulk_purge}
    return call[kind](filter, dry_run)


def _follow(client: Client, op: dict[str, Any]) -> dict[str, Any]:
    """A progress bar on stderr until the operation ends."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("skipped {task.fields[skipped]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True)) as progress:
        bar = progress.add_task(f"{op['kind']} {op['id']}", total=op["total"], skipped=0)
        while True:
            progress.update(bar, completed=op["done"] + op["skipped"], skipped=op["skipped"])
            if op["status"] != "running":
                return op
            time.sleep(POLL_S)
            op = client.operations.get(op["id"])


def _run(
    ctx: typer.Context,
    kind: Kind,
    filter: dict[str, Any],
    dry_run: bool,
    yes: bool,
    no_wait: bool,
) -> None:
    if not filter:
        raise typer.BadParameter("give a filter (--function, --status, ...) or --all")
    with connect(ctx) as client:
        count = _bulk(client, kind, filter, True)
        if dry_run:
            render.line(str(count))
            return
        if not yes:
            typer.confirm(f"{VERBS[kind]} {count} task(s)?", abort=True, err=True)
        op = _bulk(client, kind, filter, False)
        render.note(f"operation {op['id']}: {op['total']} task(s)")
        if not no_wait:
            op = _follow(client, op)
    _summary(op)


def _summary(op: dict[str, Any]) -> None:
    render.line(f"{op['id']} {op['status']}: {op['done']} done, {op['skipped']} skipped")
    if op["status"] == "failed":
        render.error(str(op.get("error")))
        raise typer.Exit(1)


def _filter(
    function: str | None,
    status: list[str] | None,
    key: str | None,
    label: list[str] | None,
    created_after: str | None,
    created_before: str | None,
    everything: bool,
) -> dict[str, Any]:
    return task_filter(
        function, status or None, created_after, created_before, key, _labels(label), everything
    )


def _bulk_verb(kind: Kind, doc: str) -> Callable[..., None]:
    """The command of one bulk verb: the filter flags, then `_run` with `kind`."""

    def verb(
        ctx: typer.Context,
        function: Function = None,
        status: Status = None,
        key: Key = None,
        label: Label = None,
        created_after: After = None,
        created_before: Before = None,
        everything: Everything = False,
        dry_run: DryRun = False,
        yes: Yes = False,
        no_wait: NoWait = False,
    ) -> None:
        f = _filter(function, status, key, label, created_after, created_before, everything)
        _run(ctx, kind, f, dry_run, yes, no_wait)

    verb.__doc__ = doc
    return verb


stop_all = _bulk_verb(
    "stop", "Stop every matching task that has not ended (running ones through their instances)."
)
rerun_all = _bulk_verb(
    "rerun", "Rerun every matching ended task (each a new task with its payload)."
)
purge_all = _bulk_verb(
    "purge", "Purge every matching ended task: its payload, result and logs erased."
)


def register(root: typer.Typer) -> None:
    """Add the bulk verbs (top level: `asyncfn tasks` lists tasks) and `asyncfn operations`."""
    root.command("stop-all")(stop_all)
    root.command("rerun-all")(rerun_all)
    root.command("purge-all")(purge_all)
    root.add_typer(app)


@app.command("get")
def get_operation(ctx: typer.Context, op_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """One operation with its progress, as JSON."""
    with connect(ctx) as client:
        render.as_json(client.operations.get(op_id))


@app.command("list")
def list_operations(
    ctx: typer.Context, limit: Annotated[int, typer.Option(min=1, max=1000)] = 20
) -> None:
    """The latest operations, newest first."""
    with connect(ctx) as client:
        ops = client.operations.list(limit)
    for op in ops:
        done = f"{op['done']}/{op['total']} (skipped {op['skipped']})"
        when = render.when(op["created_at"])
        render.line(f"{op['id']}  {op['kind']:<5}  {op['status']:<9}  {done}  {when}")
