"""`asyncfn dead-letters`: list the tasks that ended Failed or Expired for good (functions with
`async.on_dead_letter`) and rerun one, through the client."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import islice
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from asyncfn import cli_render as render
from asyncfn.cli_target import connect

app = typer.Typer(
    name="dead-letters", help="Tasks that ended Failed or Expired after all their retries."
)


def _error(entry: Mapping[str, Any]) -> str:
    error = entry.get("error")
    if not isinstance(error, Mapping):
        return "-"
    return f"{error.get('type') or 'Error'}: {error.get('message') or ''}".strip()


def dead_letters_table(entries: Iterable[Mapping[str, Any]]) -> None:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    table.add_column("TASK", no_wrap=True)
    table.add_column("FUNCTION", no_wrap=True)
    table.add_column("STATUS", no_wrap=True)
    table.add_column("ATTEMPTS", justify="right")
    table.add_column("AT", no_wrap=True)
    table.add_column("ERROR", overflow="ellipsis", max_width=60)
    table.add_column("RERUN AS", no_wrap=True)
    for entry in entries:
        status = str(entry.get("status"))
        table.add_row(
            Text(str(entry.get("task_id"))),
            Text(str(entry.get("function"))),
            Text(status, style=render.STATUS_STYLES.get(status, "")),
            str(entry.get("attempts", "-")),
            render.when(entry.get("at")),
            Text(_error(entry)),
            Text(str(entry.get("rerun_as") or "-")),
        )
    render.console().print(table)


@app.command("list")
def list_dead_letters(
    ctx: typer.Context,
    function: Annotated[
        str | None, typer.Option(metavar="FUNCTION", help="Only this function's.")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.", min=1)] = 50,
) -> None:
    """The dead letters, newest first, with the rerun made from each."""
    with connect(ctx) as client:
        pages = client.dead_letters.iter(function, page_size=min(limit, 1000))
        entries = list(islice(pages, limit))
    dead_letters_table(entries)


@app.command("rerun")
def rerun_dead_letter(
    ctx: typer.Context,
    task_id: Annotated[str, typer.Argument(metavar="TASK_ID", help="The dead letter's task.")],
) -> None:
    """Submit a dead letter's task again (once); prints the new task's id."""
    with connect(ctx) as client:
        answer = client.dead_letters.rerun(task_id)
    render.line(str(answer["task_id"]))
    render.note(f"rerun of dead letter {task_id}: {answer['task_id']} {answer['status']}")
