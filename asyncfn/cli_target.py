"""What every CLI verb shares: the node it talks to (`Target`, set by the root callback) and
`connect`, a client whose API and connection errors end the command with exit code 1 (a 429
also says when to retry), and `opt`, an option that also reads an ASYNCFN_* variable."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import typer

from asyncfn import cli_render as render
from asyncfn.client import DEFAULT_URL, ApiError, Client, RateLimited, TaskFailed


@dataclass(frozen=True, slots=True)
class Target:
    """The node the verbs talk to."""

    url: str
    api_key: str | None


def opt(name: str, help: str, *flags: str) -> Any:
    """An option that also reads ASYNCFN_<NAME>."""
    return typer.Option(*flags, envvar=f"ASYNCFN_{name}", help=help)


@contextmanager
def connect(ctx: typer.Context) -> Iterator[Client]:
    """A client for the command's node; API and connection errors end the command with 1."""
    target: Target = ctx.find_object(Target) or Target(DEFAULT_URL, None)
    try:
        with Client(target.url, api_key=target.api_key) as client:
            yield client
    except RateLimited as exc:
        wait = f"; retry in {exc.retry_after_s:g} s" if exc.retry_after_s is not None else ""
        render.error(f"{exc.message} ({exc.code}){wait}")
        raise typer.Exit(1) from None
    except TaskFailed as exc:
        render.error(exc.message, exc.error.get("traceback"))
        raise typer.Exit(1) from None
    except ApiError as exc:
        render.error(f"{exc.message} ({exc.code})")
        raise typer.Exit(1) from None
    except httpx.HTTPError as exc:
        render.error(f"cannot talk to {target.url}: {exc or type(exc).__name__}")
        raise typer.Exit(1) from None
