"""`asyncfn deploy`, `functions`, `function`, `delete`, `pause`, `unpause`: the function verbs,
registered on the root command by `register`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from asyncfn import cli_render as render
from asyncfn.cli_keys import concurrency_flags
from asyncfn.cli_shaping import debounce_body, throttle_body
from asyncfn.cli_target import connect, opt

FunctionName = Annotated[str, typer.Argument(metavar="NAME", help="The function.")]


def _function_body(
    config_file: Path | None, flags: dict[str, Any], retries: int | None, env: list[str]
) -> dict[str, Any]:
    """The config file's fields (a `function` answer works), overridden by the flags given."""
    body: dict[str, Any] = {}
    if config_file is not None:
        try:
            body = json.loads(config_file.read_text())
        except (OSError, ValueError) as exc:
            raise typer.BadParameter(str(exc), param_hint="--config") from None
        if not isinstance(body, dict):
            raise typer.BadParameter("must hold a JSON object", param_hint="--config")
        for owned_by_server in ("name", "code_sha256", "paused", "created_at", "updated_at"):
            body.pop(owned_by_server, None)  # so `asyncfn function F > f.json` deploys back
    body.update({k: v for k, v in flags.items() if v is not None})
    if retries is not None:
        body["async"] = {**(body.get("async") or {}), "max_retries": retries}
    if env:
        pairs = dict(_key_value(item) for item in env)
        body["env"] = {**(body.get("env") or {}), **pairs}
    return body


def _key_value(item: str, hint: str = "--env") -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise typer.BadParameter(f"{item!r} is not KEY=VALUE", param_hint=hint)
    return key, value


def deploy(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The function's name.")],
    handler: Annotated[str | None, opt("HANDLER", "Python handler, module:function.")] = None,
    command: Annotated[
        str | None, opt("COMMAND", 'A command run per task, e.g. "ffmpeg -i pipe:0 ...".')
    ] = None,
    code: Annotated[
        Path | None, opt("CODE", "The code: a folder (zipped for you) or a zip file.")
    ] = None,
    timeout: Annotated[int | None, opt("TIMEOUT", "Seconds a task may run.")] = None,
    memory: Annotated[int | None, opt("MEMORY", "Memory of an instance, MB.")] = None,
    max_instances: Annotated[int | None, opt("FUNCTION_MAX_INSTANCES", "Most instances.")] = None,
    concurrency: Annotated[
        list[str] | None,
        opt(
            "CONCURRENCY",
            "KEY=LIMIT[:STRATEGY]: most running tasks per key value, e.g. /customer_id=2 or"
            " tenant=5:cancel_oldest (repeatable, up to 3); a bare number: tasks one instance"
            " runs.",
        ),
    ] = None,
    min_instances: Annotated[int | None, opt("MIN_INSTANCES", "Warm instances kept.")] = None,
    max_concurrency: Annotated[
        int | None, opt("MAX_CONCURRENCY", "Most tasks running at once, cluster-wide.")
    ] = None,
    rate_limit: Annotated[
        float | None, opt("RATE_LIMIT", "Most task starts per second, cluster-wide.")
    ] = None,
    rate_burst: Annotated[
        int | None, opt("RATE_BURST", "Starts allowed at once under --rate-limit.")
    ] = None,
    retries: Annotated[int | None, opt("RETRIES", "Retries after a failed attempt.")] = None,
    retain_payload: Annotated[
        bool | None,
        opt(
            "RETAIN_PAYLOAD",
            "--no-retain-payload: purge each task's payload, result and logs once it ended.",
            "--retain-payload/--no-retain-payload",
        ),
    ] = None,
    env: Annotated[list[str] | None, opt("ENV", "KEY=VALUE for the function (repeatable).")] = None,
    require: Annotated[
        list[str] | None,
        opt("REQUIRE", "KEY=VALUE a node's labels must hold to run it (repeatable)."),
    ] = None,
    config_file: Annotated[
        Path | None,
        opt("CONFIG", "A JSON file of function config; flags override it.", "--config"),
    ] = None,
    debounce: Annotated[
        str | None,
        opt(
            "DEBOUNCE",
            "KEY:WINDOW_S:MAX_WAIT_S: tasks of one key within the window collapse into the"
            " latest (e.g. /doc_id:2:30).",
        ),
    ] = None,
    throttle: Annotated[
        str | None,
        opt("THROTTLE", "KEY:PER_S[:BURST]: starts per second per key, the rest delayed in order."),
    ] = None,
) -> None:
    """Create or update a function and upload its code."""
    if handler is not None and command is not None:
        raise typer.BadParameter("give --handler or --command, not both")
    if code is not None and not code.exists():
        raise typer.BadParameter(f"{code} does not exist", param_hint="--code")
    per_instance, key_limits = concurrency_flags(concurrency or [])
    flags = {
        "timeout_s": timeout,
        "memory_mb": memory,
        "max_instances": max_instances,
        "instance_concurrency": per_instance,
        "min_instances": min_instances,
        "max_concurrency": max_concurrency,
        "rate_limit": rate_limit,
        "rate_burst": rate_burst,
        "retain_payload": retain_payload,
    }
    body = _function_body(config_file, flags, retries, env or [])
    if key_limits:
        body["concurrency"] = key_limits
    if debounce is not None:
        body["debounce"] = debounce_body(debounce)
    if throttle is not None:
        body["throttle"] = throttle_body(throttle)
    if require:
        pairs = dict(_key_value(item, "--require") for item in require)
        body["requires"] = {**(body.get("requires") or {}), **pairs}
    from_file = {key: body.pop(key, None) for key in ("runtime", "handler", "command")}
    runtime = None
    if handler is None and command is None:
        runtime, handler, command = from_file["runtime"], from_file["handler"], from_file["command"]
    with connect(ctx) as client:
        function = client.deploy(
            name, handler=handler, command=command, runtime=runtime, code=code, **body
        )
    render.as_json(function)
    render.note(f"deployed {name}; code sha256 {function.get('code_sha256') or '(none)'}")


def functions(ctx: typer.Context) -> None:
    """List the functions."""
    with connect(ctx) as client:
        render.functions_table(client.list_functions())


def function(ctx: typer.Context, name: Annotated[str, typer.Argument(metavar="NAME")]) -> None:
    """Show one function as JSON."""
    with connect(ctx) as client:
        render.as_json(client.get_function(name))


def delete(ctx: typer.Context, name: Annotated[str, typer.Argument(metavar="NAME")]) -> None:
    """Delete a function; its queued tasks end Invalid."""
    with connect(ctx) as client:
        client.delete_function(name)
    render.note(f"deleted {name}")


def _show_paused(function: dict[str, Any]) -> None:
    render.line(f"{function['name']} {'paused' if function.get('paused') else 'unpaused'}")


def pause(ctx: typer.Context, name: FunctionName) -> None:
    """Pause a function's queue: tasks are still accepted but none starts; prints `NAME paused`."""
    with connect(ctx) as client:
        _show_paused(client.suspend_function(name))


def unpause(ctx: typer.Context, name: FunctionName) -> None:
    """Let a paused function's queue run again; prints `NAME unpaused`."""
    with connect(ctx) as client:
        _show_paused(client.resume_function(name))


def register(app: typer.Typer) -> None:
    """Add the function verbs to the root command."""
    for verb in (deploy, functions, function, delete, pause, unpause):
        app.command()(verb)
