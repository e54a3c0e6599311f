"""``openims iam ak``: create, list, show, enable/disable and delete access keys (AK/SK) over the HTTP API.

Like the rest of ``openims iam`` it logs in with a password (``OPENIMS_*``) and works against a
server on another host. A secret key is printed once, when it is created: the service keeps it
encrypted and never shows it again."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from rich.markup import escape

from openims.cli.common import (
    CliError,
    JsonOpt,
    err,
    handles_errors,
    print_json,
    print_rows,
    show,
)
from openims.cli.iam import iam_session, resolve_id
from openims.client.iam import IamClient
from openims.client.session import Session

app = typer.Typer(help="Access keys (AK/SK) for the official SDKs and signed requests.", no_args_is_help=True)


_COLUMNS = (("Access key", "access"), ("Status", "status"), ("Created", "create_time"),
            ("Description", "description"))


_KEYS = ("access", "user_id", "status", "create_time", "last_use_time", "description")




UserOpt = Annotated[str | None, typer.Option("--user", help="whose keys (name or id; default: yours)")]


def _user_id(s: Session, user: str | None) -> str:
    if user is not None:
        return resolve_id(s, "users", user)
    if not s.user_id:
        raise CliError("Could not determine the logged-in user.")
    return s.user_id


@app.command("create")
@handles_errors
def ak_create(ctx: typer.Context, user: UserOpt = None,
              description: Annotated[str | None, typer.Option(help="free text")] = None,
              as_json: JsonOpt = False) -> None:
    """Create a permanent access key; its secret is shown this once."""
    with iam_session(ctx) as s:
        body: dict[str, Any] = {"user_id": _user_id(s, user)}
        if description is not None:
            body["description"] = description
        credential = IamClient(s).create_credential(body)
    if as_json:
        print_json(credential, sort_keys=True)
        return
    show(credential, ("access", "secret", "user_id", "status", "create_time", "description"), False)
    err.print("[bold]The secret key is shown only now:[/bold] store it safely; it cannot be retrieved later.")


@app.command("list")
@handles_errors
def ak_list(ctx: typer.Context, user: UserOpt = None, as_json: JsonOpt = False) -> None:
    """List a user's permanent access keys."""
    with iam_session(ctx) as s:
        params = {"user_id": _user_id(s, user)}
        credentials = IamClient(s).credentials(params)
    print_rows(credentials, _COLUMNS, as_json)


@app.command("show")
@handles_errors
def ak_show(ctx: typer.Context, access: Annotated[str, typer.Argument(help="the access key (AK)")],
            as_json: JsonOpt = False) -> None:
    """Show an access key, with when it was last used."""
    with iam_session(ctx) as s:
        credential = IamClient(s).credential(access)
    show(credential, _KEYS, as_json)


@app.command("update")
@handles_errors
def ak_update(
    ctx: typer.Context,
    access: Annotated[str, typer.Argument(help="the access key (AK)")],
    enabled: Annotated[bool | None, typer.Option("--enable/--disable", help="activate or deactivate")] = None,
    description: Annotated[str | None, typer.Option(help="new description")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Enable or disable an access key, or change its description."""
    change: dict[str, Any] = {}
    if enabled is not None:
        change["status"] = "active" if enabled else "inactive"
    if description is not None:
        change["description"] = description
    if not change:
        raise CliError("Nothing to change: give --enable/--disable or --description.")
    with iam_session(ctx) as s:
        credential = IamClient(s).update_credential(access, change)
    show(credential, _KEYS, as_json)


@app.command("delete")
@handles_errors
def ak_delete(ctx: typer.Context, access: Annotated[str, typer.Argument(help="the access key (AK)")]) -> None:
    """Delete an access key; requests signed with it are refused from now on."""
    with iam_session(ctx) as s:
        IamClient(s).delete_credential(access)
    err.print(f"deleted access key {escape(access)}")


@app.command("temporary")
@handles_errors
def ak_temporary(
    ctx: typer.Context,
    duration: Annotated[int, typer.Option(help="validity in seconds (900-86400)", min=900, max=86400)] = 900,
    as_json: JsonOpt = False,
) -> None:
    """Obtain a temporary access key and its security token (for X-Security-Token)."""
    with iam_session(ctx) as s:
        credential = IamClient(s).temporary_credential(duration)
    if as_json:
        print_json(credential, sort_keys=True)
    else:
        # Plain text: these values are copied whole into environment variables.
        sys.stdout.write(f"access:        {credential['access']}\nsecret:        {credential['secret']}\n"
                         f"expires_at:    {credential['expires_at']}\nsecuritytoken: {credential['securitytoken']}\n")
