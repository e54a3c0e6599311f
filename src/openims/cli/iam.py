"""``openims iam``: manage projects, users, groups, roles and grants over the HTTP API.

Everything goes through ``openims.client.Session``, so it works against a server on another
host (``OPENIMS_ENDPOINT``) exactly as it does locally. Objects are named by name or id."""

from __future__ import annotations

import dataclasses
import re
import sys
from collections.abc import Sequence
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
    table,
)
from openims.client.iam import SINGULAR, GrantTarget, IamClient, Kind
from openims.client.session import Credentials, Session

app = typer.Typer(help="Identity administration: projects, users, groups, roles and grants.",
                  no_args_is_help=True)
project_app = typer.Typer(help="Projects (named <region>_<suffix>, e.g. local-1_dev).", no_args_is_help=True)
user_app = typer.Typer(help="Users of the account.", no_args_is_help=True)
group_app = typer.Typer(help="User groups and their members.", no_args_is_help=True)
role_app = typer.Typer(help="System roles.", no_args_is_help=True)
grant_app = typer.Typer(help="Roles granted to groups on a project, the account or all projects.",
                        no_args_is_help=True)
app.add_typer(project_app, name="project")
app.add_typer(user_app, name="user")
app.add_typer(group_app, name="group")
app.add_typer(role_app, name="role")
app.add_typer(grant_app, name="grant")


_HEX32 = re.compile(r"^[0-9a-f]{32}$")

GroupArg = Annotated[str, typer.Argument(help="group name or id")]


@dataclasses.dataclass
class _Target:
    endpoint: str | None = None
    username: str | None = None
    domain: str | None = None
    project: str | None = None


@app.callback()
def _main(
    ctx: typer.Context,
    endpoint: Annotated[str | None, typer.Option(help="API endpoint [OPENIMS_ENDPOINT]")] = None,
    username: Annotated[str | None, typer.Option("--user", help="log in as [OPENIMS_USERNAME]")] = None,
    domain: Annotated[str | None, typer.Option(help="the user's account [OPENIMS_DOMAIN]")] = None,
    project: Annotated[str | None, typer.Option(help="project for the token [OPENIMS_PROJECT]")] = None,
) -> None:
    """Connection: OPENIMS_* variables (password: OPENIMS_PASSWORD or ./data/admin-credentials)."""
    ctx.obj = _Target(endpoint, username, domain, project)


def iam_session(ctx: typer.Context) -> Session:
    target = _find_target(ctx)
    creds = Credentials.from_env()
    changes = {k: v for k, v in (("endpoint", target.endpoint), ("username", target.username),
                                 ("domain", target.domain), ("project", target.project)) if v is not None}
    return Session(dataclasses.replace(creds, **changes))


def _find_target(ctx: typer.Context) -> _Target:
    # Click hands a parent's ``obj`` down to its subcommands' contexts.
    return ctx.obj if isinstance(ctx.obj, _Target) else _Target()




def _resolve(s: Session, kind: Kind, ref: str) -> dict[str, Any]:
    """The object of ``kind`` named or identified by ``ref``; ids are tried first when they look like one."""
    if _HEX32.fullmatch(ref):
        found = IamClient(s).get(kind, ref)
        if found is not None:
            return found
    items = IamClient(s).listing(kind, {"name": ref})
    if len(items) == 1:
        item: dict[str, Any] = items[0]
        return item
    if not items:
        raise CliError(f"No {SINGULAR[kind]} named or with id {ref!r}.")
    raise CliError(f"{len(items)} {kind} are named {ref!r}; use the id.")


def resolve_id(s: Session, kind: Kind, ref: str) -> str:
    return str(_resolve(s, kind, ref)["id"])


def _domain_id(s: Session) -> str:
    if s.domain_id:
        return s.domain_id
    domains = IamClient(s).my_domains()
    if not domains:
        raise CliError("The account (domain) of this user could not be determined.")
    return str(domains[0]["id"])


_PROJECT_COLUMNS = (("ID", "id"), ("Name", "name"), ("Enabled", "enabled"), ("Description", "description"))


_PROJECT_KEYS = ("id", "name", "domain_id", "parent_id", "enabled", "status", "description")


def _named_commands(sub: typer.Typer, kind: Kind, columns: Sequence[tuple[str, str]], keys: Sequence[str], *,
                    name_help: str, notes: dict[str, str]) -> None:
    """``list``, ``create NAME [--description]`` and ``delete NAME|ID`` for a kind that is just a named object
    of the account (projects, groups); ``notes`` are the commands' help texts."""
    singular = SINGULAR[kind]

    @sub.command("list", help=notes["list"])
    @handles_errors
    def _list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
        with iam_session(ctx) as s:
            print_rows(IamClient(s).listing(kind), columns, as_json)

    @sub.command("create", help=notes["create"])
    @handles_errors
    # Closure values go in defaults: string annotations are resolved in the module's globals.
    def _create(ctx: typer.Context, name: str = typer.Argument(..., help=name_help),
                description: Annotated[str | None, typer.Option(help="free text")] = None,
                as_json: JsonOpt = False) -> None:
        body: dict[str, Any] = {"name": name, **({"description": description} if description is not None else {})}
        with iam_session(ctx) as s:
            show(IamClient(s).create(kind, body), keys, as_json)

    @sub.command("delete", help=notes["delete"])
    @handles_errors
    def _delete(ctx: typer.Context, ref: str = typer.Argument(..., metavar=singular, help="name or id"),
                ) -> None:
        with iam_session(ctx) as s:
            IamClient(s).delete(kind, resolve_id(s, kind, ref))
        err.print(f"deleted {singular} {escape(ref)}")


_named_commands(project_app, "projects", _PROJECT_COLUMNS, _PROJECT_KEYS, name_help="<region>_<suffix>",
                notes={"list": "List the account's projects.", "create": "Create a project.",
                       "delete": "Delete a project (it must own no images)."})


@project_app.command("show")
@handles_errors
def project_show(ctx: typer.Context, project: Annotated[str, typer.Argument(help="name or id")],
                 as_json: JsonOpt = False) -> None:
    """Show a project, with its status."""
    with iam_session(ctx) as s:
        pid = resolve_id(s, "projects", project)
        shown = IamClient(s).project_details(pid)
    show(shown, _PROJECT_KEYS, as_json)


@project_app.command("update")
@handles_errors
def project_update(
    ctx: typer.Context,
    project: Annotated[str, typer.Argument(help="name or id")],
    name: Annotated[str | None, typer.Option(help="new name")] = None,
    description: Annotated[str | None, typer.Option(help="new description")] = None,
    enabled: Annotated[bool | None, typer.Option("--enable/--disable", help="enable or disable")] = None,
    status: Annotated[str | None, typer.Option(help="normal | suspended")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Rename, describe, enable/disable or suspend a project."""
    changes: dict[str, Any] = {k: v for k, v in (("name", name), ("description", description),
                                                 ("enabled", enabled)) if v is not None}
    if not changes and status is None:
        raise CliError("Nothing to change: give --name, --description, --enable/--disable or --status.")
    with iam_session(ctx) as s:
        pid = resolve_id(s, "projects", project)
        if status is not None:
            IamClient(s).set_project_status(pid, status)
        if changes:
            IamClient(s).update("projects", pid, changes)
        shown = IamClient(s).project_details(pid)
    show(shown, _PROJECT_KEYS, as_json)


_USER_COLUMNS = (("ID", "id"), ("Name", "name"), ("Enabled", "enabled"), ("Email", "email"),
                 ("Description", "description"))


_USER_KEYS = ("id", "name", "domain_id", "enabled", "email", "description", "password_expires_at")


def _new_password(given: str | None, from_stdin: bool, prompt: str = "Password") -> str:
    if given is not None:
        return given
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    value: str = typer.prompt(prompt, hide_input=True, confirmation_prompt=True)
    return value


@user_app.command("list")
@handles_errors
def user_list(ctx: typer.Context, name: Annotated[str | None, typer.Option(help="exact name")] = None,
              enabled: Annotated[bool | None, typer.Option("--enabled/--disabled", help="filter")] = None,
              as_json: JsonOpt = False) -> None:
    """List the account's users."""
    params: dict[str, str] = {}
    if name is not None:
        params["name"] = name
    if enabled is not None:
        params["enabled"] = "true" if enabled else "false"
    with iam_session(ctx) as s:
        users = IamClient(s).listing("users", params)
    print_rows(users, _USER_COLUMNS, as_json)


@user_app.command("create")
@handles_errors
def user_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="5-32 characters")],
    password: Annotated[str | None, typer.Option(help="initial password (prompted if omitted)")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="read it from stdin")] = False,
    description: Annotated[str | None, typer.Option(help="free text")] = None,
    email: Annotated[str | None, typer.Option(help="e-mail address")] = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="create disabled")] = False,
    groups: Annotated[list[str] | None, typer.Option("--group", help="add to group (repeatable)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a user, optionally adding it to groups."""
    body: dict[str, Any] = {"name": name, "password": _new_password(password, password_stdin),
                            "enabled": not disabled}
    if description is not None:
        body["description"] = description
    if email is not None:
        body["email"] = email
    with iam_session(ctx) as s:
        group_ids = [resolve_id(s, "groups", g) for g in groups or []]
        user = IamClient(s).create("users", body)
        for gid in group_ids:
            IamClient(s).add_member(gid, user["id"])
    show(user, _USER_KEYS, as_json)


@user_app.command("show")
@handles_errors
def user_show(ctx: typer.Context, user: Annotated[str, typer.Argument(help="name or id")],
              as_json: JsonOpt = False) -> None:
    """Show a user and its groups."""
    with iam_session(ctx) as s:
        shown = _resolve(s, "users", user)
        groups = IamClient(s).user_groups(shown["id"])
    shown = {**shown, "groups": [g["name"] for g in groups]}
    if as_json:
        print_json(shown, sort_keys=True)
    else:
        show({**shown, "groups": ", ".join(shown["groups"])}, (*_USER_KEYS, "groups"), False)


@user_app.command("update")
@handles_errors
def user_update(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="name or id")],
    name: Annotated[str | None, typer.Option(help="new name")] = None,
    password: Annotated[str | None, typer.Option(help="new password (revokes the user's tokens)")] = None,
    enabled: Annotated[bool | None, typer.Option("--enable/--disable", help="enable or disable")] = None,
    description: Annotated[str | None, typer.Option(help="new description")] = None,
    email: Annotated[str | None, typer.Option(help="new e-mail address")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a user's name, password, state, description or e-mail (as an administrator)."""
    changes = {k: v for k, v in (("name", name), ("password", password), ("enabled", enabled),
                                 ("description", description), ("email", email)) if v is not None}
    if not changes:
        raise CliError("Nothing to change: give --name, --password, --enable/--disable, --description "
                       "or --email.")
    with iam_session(ctx) as s:
        uid = resolve_id(s, "users", user)
        shown = IamClient(s).update("users", uid, changes)
    show(shown, _USER_KEYS, as_json)


@user_app.command("delete")
@handles_errors
def user_delete(ctx: typer.Context, user: Annotated[str, typer.Argument(help="name or id")]) -> None:
    """Delete a user (revokes its tokens)."""
    with iam_session(ctx) as s:
        uid = resolve_id(s, "users", user)
        IamClient(s).delete("users", uid)
    err.print(f"deleted user {escape(user)}")


@user_app.command("password")
@handles_errors
def user_password(
    ctx: typer.Context,
    old: Annotated[str | None, typer.Option("--old", help="current password (default: login one)")] = None,
    new: Annotated[str | None, typer.Option("--new", help="new password (prompted if omitted)")] = None,
) -> None:
    """Change your own password; every token you hold is revoked."""
    with iam_session(ctx) as s:
        original = old if old is not None else s.credentials.password
        if not original:
            original = typer.prompt("Current password", hide_input=True)
        new_password = _new_password(new, False, "New password")
        user_id = s.user_id
        if not user_id:
            raise CliError("Could not determine the logged-in user.")
        IamClient(s).change_password(user_id, original, new_password)
        # The cached token was just revoked; forget it so the next command logs in afresh.
        s.invalidate()
    err.print("password changed; update OPENIMS_PASSWORD (or the credentials file) before the next command")


_GROUP_COLUMNS = (("ID", "id"), ("Name", "name"), ("Description", "description"))


_named_commands(group_app, "groups", _GROUP_COLUMNS, ("id", "name", "domain_id", "description"),
                name_help="group name",
                notes={"list": "List the account's user groups.", "create": "Create a user group.",
                       "delete": "Delete a user group (its grants and memberships go with it)."})


def _membership_command(verb: str, done: str, help_text: str, add: bool) -> None:
    @group_app.command(verb, help=help_text)
    @handles_errors
    def _change(ctx: typer.Context, group: GroupArg, user: Annotated[str, typer.Argument(help="user name or id")],
                ) -> None:
        with iam_session(ctx) as s:
            gid, uid = resolve_id(s, "groups", group), resolve_id(s, "users", user)
            (IamClient(s).add_member if add else IamClient(s).remove_member)(gid, uid)
        err.print(f"{done} {escape(user)} {'to' if add else 'from'} {escape(group)}")


_membership_command("add-user", "added", "Add a user to a group.", add=True)
_membership_command("remove-user", "removed", "Remove a user from a group.", add=False)


@group_app.command("users")
@handles_errors
def group_users(ctx: typer.Context, group: GroupArg,
                as_json: JsonOpt = False) -> None:
    """List a group's members."""
    with iam_session(ctx) as s:
        gid = resolve_id(s, "groups", group)
        users = IamClient(s).group_users(gid)
    print_rows(users, _USER_COLUMNS, as_json)


@role_app.command("list")
@handles_errors
def role_list(ctx: typer.Context, name: Annotated[str | None, typer.Option(help="exact name")] = None,
              as_json: JsonOpt = False) -> None:
    """List the system roles."""
    with iam_session(ctx) as s:
        roles = IamClient(s).listing("roles", {"name": name} if name else None)
    if as_json:
        print_json(roles, sort_keys=True)
    else:
        table(roles, (("ID", "id"), ("Name", "name"), ("Display name", "display_name"), ("Type", "type"),
                       ("Description", "description")))


def _grant_args(s: Session, group: str, role: str, project: str | None, domain: bool,
                all_projects: bool) -> tuple[GrantTarget, str, str, str]:
    """(target, target id, group id, role id) of a grant named on the command line."""
    if sum((project is not None, domain, all_projects)) != 1:
        raise CliError("Give exactly one of --project NAME|ID, --domain or --all-projects.")
    gid, rid = resolve_id(s, "groups", group), resolve_id(s, "roles", role)
    if project is not None:
        return "project", resolve_id(s, "projects", project), gid, rid
    return ("domain" if domain else "all_projects"), _domain_id(s), gid, rid


ProjectOpt = Annotated[str | None, typer.Option("--project", help="on this project (name or id)")]


DomainOpt = Annotated[bool, typer.Option("--domain", help="on the account (domain) itself")]


AllProjectsOpt = Annotated[bool, typer.Option("--all-projects", help="on every project, present and future")]


def _grant_command(verb: str, help_text: str, add: bool) -> None:
    @grant_app.command(verb, help=help_text)
    @handles_errors
    def _change(ctx: typer.Context, group: GroupArg,
                role: Annotated[str, typer.Argument(help="role name or id, e.g. readonly")],
                project: ProjectOpt = None, domain: DomainOpt = False, all_projects: AllProjectsOpt = False) -> None:
        with iam_session(ctx) as s:
            (IamClient(s).grant if add else IamClient(s).revoke)(
                *_grant_args(s, group, role, project, domain, all_projects))
        err.print(f"granted {escape(role)} to {escape(group)}" if add else
                  f"revoked {escape(role)} from {escape(group)}")


_grant_command("add", "Grant a role to a group.", add=True)
_grant_command("remove", "Revoke a role from a group (members must log in again).", add=False)


@grant_app.command("list")
@handles_errors
def grant_list(ctx: typer.Context, group: Annotated[str | None, typer.Option(help="only this group")] = None,
               project: ProjectOpt = None, domain: DomainOpt = False, all_projects: AllProjectsOpt = False,
               as_json: JsonOpt = False) -> None:
    """List grants, with names."""
    if sum((project is not None, domain, all_projects)) > 1:
        raise CliError("Give at most one of --project, --domain or --all-projects.")
    with iam_session(ctx) as s:
        params: dict[str, str] = {}
        if group is not None:
            params["group.id"] = resolve_id(s, "groups", group)
        if project is not None:
            params["scope.project.id"] = resolve_id(s, "projects", project)
        if domain or all_projects:
            params["scope.domain.id"] = _domain_id(s)
        if all_projects:
            params["scope.OS-INHERIT:inherited_to"] = "projects"
        iam = IamClient(s)
        found = iam.role_assignments(params)
        roles = {r["id"]: r["name"] for r in iam.listing("roles")}
        groups = {g["id"]: g["name"] for g in iam.listing("groups")}
        projects = {p["id"]: p["name"] for p in iam.listing("projects")}
    if domain:
        # The domain filter also matches inherited grants; --domain means the domain itself.
        found = [a for a in found if "OS-INHERIT:inherited_to" not in a["scope"]]
    rows = []
    for a in found:
        scope = a["scope"]
        if "project" in scope:
            target = f"project {projects.get(scope['project']['id'], scope['project']['id'])}"
        elif "OS-INHERIT:inherited_to" in scope:
            target = "all projects"
        else:
            target = "domain"
        rows.append({"group": groups.get(a["group"]["id"], a["group"]["id"]),
                     "role": roles.get(a["role"]["id"], a["role"]["id"]), "target": target,
                     "group_id": a["group"]["id"], "role_id": a["role"]["id"], "scope": scope})
    print_rows(rows, (("Group", "group"), ("Role", "role"), ("On", "target")), as_json)
