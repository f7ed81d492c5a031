"""`asyncfn tenants` and `asyncfn keys`: tenant and API-key management through the client,
with the admin key (`--api-key` / ASYNCFN_API_KEY set to the node's ASYNCFN_ADMIN_KEY)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from asyncfn import cli_render as render
from asyncfn.cli_target import connect
from asyncfn.client_tenants import UNSET, Unset

tenants_app = typer.Typer(name="tenants", help="Tenants: isolated users of the platform.")
keys_app = typer.Typer(name="keys", help="API keys of tenants (made, listed, revoked).")


@tenants_app.command("create")
def create_tenant(ctx: typer.Context, name: Annotated[str, typer.Argument(metavar="NAME")]) -> None:
    """Create a tenant; then give it a key with `asyncfn keys create --tenant NAME`."""
    with connect(ctx) as client:
        made = client.create_tenant(name)
    render.note(f"created tenant {made['name']}")


@tenants_app.command("list")
def list_tenants(ctx: typer.Context) -> None:
    """Every tenant."""
    with connect(ctx) as client:
        render.tenants_table(client.list_tenants())


def _quota(value: float | None, clear: bool, flag: str) -> float | Unset | None:
    """A quota to send: the value given, None (lift it) for --clear-*, else not sent."""
    if clear and value is not None:
        raise typer.BadParameter(f"give --{flag} or --clear-{flag}, not both")
    return None if clear else UNSET if value is None else value


@tenants_app.command("limits")
def set_limits(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME")],
    max_running: Annotated[
        int | None, typer.Option(help="Most tasks of the tenant running at once.", min=1)
    ] = None,
    submit_rate: Annotated[
        float | None, typer.Option(help="Most submissions per second (then HTTP 429).")
    ] = None,
    submit_burst: Annotated[
        int | None, typer.Option(help="Submissions allowed at once under the rate.", min=1)
    ] = None,
    clear_max_running: Annotated[
        bool, typer.Option("--clear-max-running", help="Lift the running cap.")
    ] = False,
    clear_submit_rate: Annotated[
        bool, typer.Option("--clear-submit-rate", help="Lift the submit rate.")
    ] = False,
    clear_submit_burst: Annotated[
        bool, typer.Option("--clear-submit-burst", help="Back to one second's worth.")
    ] = False,
) -> None:
    """Change a tenant's quotas (others keep their value) and show them all."""
    with connect(ctx) as client:
        tenant = client.set_tenant_limits(
            name,
            max_running=_int_quota(_quota(max_running, clear_max_running, "max-running")),
            submit_rate=_quota(submit_rate, clear_submit_rate, "submit-rate"),
            submit_burst=_int_quota(_quota(submit_burst, clear_submit_burst, "submit-burst")),
        )
    render.tenants_table([tenant])


def _int_quota(value: float | Unset | None) -> int | Unset | None:
    return value if value is None or isinstance(value, Unset) else int(value)


class KeyKind(StrEnum):
    API = "api"
    SIGNING = "signing"


@keys_app.command("create")
def create_key(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Option(help="The tenant the key acts for.")],
    name: Annotated[str | None, typer.Option(help="A label, e.g. who uses the key.")] = None,
    kind: Annotated[
        KeyKind, typer.Option(help="api: a bearer key; signing: an access key for the cloud APIs.")
    ] = KeyKind.API,
) -> None:
    """Make a key and print it: this is the only time its secret is shown."""
    with connect(ctx) as client:
        made = client.create_key(tenant, name, kind.value)
    if kind is KeyKind.SIGNING:
        render.line(f"access_key_id={made['access_key_id']}")
        render.line(f"access_key_secret={made['access_key_secret']}")
    else:
        render.line(str(made["key"]))
    render.note(f"key {made['id']} of tenant {made['tenant']}: store it now, it is not shown again")


@keys_app.command("list")
def list_keys(
    ctx: typer.Context,
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's keys.")] = None,
) -> None:
    """Keys by tenant (ids and labels; the keys themselves are never stored)."""
    with connect(ctx) as client:
        render.keys_table(client.list_keys(tenant))


@keys_app.command("revoke")
def revoke_key(
    ctx: typer.Context, key_id: Annotated[str, typer.Argument(metavar="KEY_ID")]
) -> None:
    """Revoke a key: it stops working at once."""
    with connect(ctx) as client:
        client.revoke_key(key_id)
    render.note(f"revoked key {key_id}")
