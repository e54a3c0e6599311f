"""``openims account``: accounts (Keystone domains), for the deployment's operator.

``create`` makes an account ready for its administrator in one step (``IamClient.create_account``);
the others list, show, disable, enable and delete accounts. The server refuses them to anyone but
an operator (403)."""

from __future__ import annotations

import secrets
import sys
from typing import Annotated, Any

import typer
from rich.markup import escape

from openims.cli.common import CliError, JsonOpt, err, out, print_json, print_rows, session, show
from openims.client.iam import IamClient
from openims.client.session import Session
from openims.iam.passwords import password_problem

app = typer.Typer(help="Accounts (domains): create, list, show, disable, enable, delete (operators).",
                  no_args_is_help=True)

AccountArg = Annotated[str, typer.Argument(help="account name or id")]
_COLUMNS = (("ID", "id"), ("Name", "name"), ("Enabled", "enabled"))
_KEYS = ("id", "name", "enabled", "description")


def _account(s: Session, ref: str) -> dict[str, Any]:
    iam = IamClient(s)
    found = iam.get("domains", ref)
    if found is not None:
        return found
    named = iam.listing("domains", {"name": ref})
    if not named:
        raise CliError(f"No account named or with id {ref!r}.")
    account: dict[str, Any] = named[0]
    return account


def _generated_password(user: str) -> str:
    while True:
        # "Ims-" gives three character classes whatever the random part holds.
        password = "Ims-" + secrets.token_urlsafe(18)
        if password_problem(password, user) is None:
            return password


@app.command("create")
def account_create(
    name: Annotated[str, typer.Argument(help="the account's name: what its users give as their domain")],
    admin_user: Annotated[str, typer.Option("--admin-user", help="its administrator's user name")],
    admin_password: Annotated[str | None, typer.Option("--admin-password",
                                                       help="its password (generated and printed once if omitted)")]
    = None,
    password_stdin: Annotated[bool, typer.Option("--admin-password-stdin", help="read the password from stdin")]
    = False,
    description: Annotated[str | None, typer.Option(help="free text")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an account with its project <region> and an administrator (te_admin and secu_admin)."""
    generated = admin_password is None and not password_stdin
    password = (admin_password if admin_password is not None
                else sys.stdin.readline().rstrip("\n") if password_stdin else _generated_password(admin_user))
    with session() as s:
        made = IamClient(s).create_account(name, admin_user=admin_user, admin_password=password,
                                           description=description)
    summary = {"id": made["domain"]["id"], "name": made["domain"]["name"], "enabled": made["domain"]["enabled"],
               "project": made["project"]["name"], "project_id": made["project"]["id"],
               "admin_user": made["user"]["name"], "admin_user_id": made["user"]["id"]}
    if generated:
        summary["admin_password"] = password
    if as_json:
        print_json(summary)
        return
    show(summary, list(summary), False)
    if generated:
        err.print("The administrator's password is shown only this once.")


@app.command("list")
def account_list(enabled: Annotated[bool | None, typer.Option("--enabled/--disabled", help="filter")] = None,
                 as_json: JsonOpt = False) -> None:
    """List the accounts."""
    params = {} if enabled is None else {"enabled": "true" if enabled else "false"}
    with session() as s:
        accounts = IamClient(s).listing("domains", params)
    print_rows(accounts, _COLUMNS, as_json)


@app.command("show")
def account_show(account: AccountArg, as_json: JsonOpt = False) -> None:
    """Show an account."""
    with session() as s:
        shown = _account(s, account)
    show(shown, _KEYS, as_json)


def _set_enabled(account: str, enabled: bool) -> None:
    with session() as s:
        found = _account(s, account)
        IamClient(s).update("domains", found["id"], {"enabled": enabled})
    word = "enabled" if enabled else "disabled: its tokens, access keys and logins stop working"
    out.print(f"account {escape(found['name'])} {word}")


@app.command("disable")
def account_disable(account: AccountArg) -> None:
    """Disable an account: its users' tokens, access keys and logins stop working at once."""
    _set_enabled(account, False)


@app.command("enable")
def account_enable(account: AccountArg) -> None:
    """Enable a disabled account again."""
    _set_enabled(account, True)


@app.command("delete")
def account_delete(account: AccountArg) -> None:
    """Delete a disabled account that holds no images, buckets or namespaces (with its identities)."""
    with session() as s:
        found = _account(s, account)
        IamClient(s).delete("domains", found["id"])
    err.print(f"deleted account {escape(found['name'])}")
