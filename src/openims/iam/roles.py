"""The system roles this deployment knows and what each may do."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Permission(StrEnum):
    READ = "read"  # query images, jobs, quotas
    WRITE = "write"  # create, update, delete, share images
    DOWNLOAD = "download"  # read image data (Glance: a reader may not, a member may)
    IMAGE_ADMIN = "image_admin"  # what a project's image administrator alone may: download deactivated images
    IAM_ADMIN = "iam_admin"  # manage projects, users, groups, grants
    # The deployment's operator (issue 13): accounts, public images, every project. No tenant role
    # carries it, whatever it is called (te_admin, Keystone admin): only the ``operator`` role.
    OPERATOR = "operator"


@dataclass(frozen=True)
class SystemRole:
    name: str
    display_name: str
    description: str
    type: str  # AX domain-level, XA project-level, AA both
    catalog: str
    permissions: frozenset[Permission]


OPERATOR_ROLE = "operator"

# Everything a tenant can be given: all permissions but the operator's.
TENANT_ALL = frozenset(Permission) - {Permission.OPERATOR}
_ALL = TENANT_ALL
_RW = frozenset({Permission.READ, Permission.WRITE, Permission.DOWNLOAD})
_R = frozenset({Permission.READ})

SYSTEM_ROLES: tuple[SystemRole, ...] = (
    SystemRole("te_admin", "Tenant Administrator", "All permissions except IAM user management.", "AA",
               "BASE", _ALL),
    SystemRole("secu_admin", "Security Administrator", "Manages users, groups, projects and permissions.",
               "AX", "BASE", frozenset({Permission.IAM_ADMIN, Permission.READ})),
    SystemRole("readonly", "Tenant Guest", "Read-only access to all cloud resources.", "AA", "BASE", _R),
    SystemRole("ims_adm", "IMS Administrator", "Administrator permissions for IMS.", "XA", "IMS",
               _RW | {Permission.IMAGE_ADMIN}),
    SystemRole("server_adm", "Server Administrator",
               "Create, delete, query, modify and upload images.", "XA", "ECS", _RW),
    SystemRole("ims_fullaccess", "IMS FullAccess", "All permissions for IMS.", "XA", "IMS", _RW),
    SystemRole("ims_readonly", "IMS ReadOnlyAccess", "Read-only permissions for IMS.", "XA", "IMS", _R),
    # Keystone's default roles, for OpenStack tools and scripts: the same permissions, by their names.
    SystemRole("admin", "Admin", "Keystone admin: as te_admin where it is granted.", "AA", "BASE", _ALL),
    SystemRole("member", "Member", "Keystone member: read and change the project's images.", "AA", "BASE", _RW),
    SystemRole("reader", "Reader", "Keystone reader: read-only.", "AA", "BASE", _R),
    # Held by the bootstrap ``admin`` user (service.bootstrap), granted to users directly and only by
    # an operator (grants.add_grant); in every token of its holder, whatever the scope (service.effective_roles).
    SystemRole(OPERATOR_ROLE, "Operator",
               "The deployment's operator: accounts, public images, every project.", "AX", "BASE",
               frozenset({Permission.OPERATOR})),
)

# Keystone's implied roles (admin → member → reader): holding one is holding those it implies,
# and tokens list them all.
IMPLIES: dict[str, tuple[str, ...]] = {"admin": ("member",), "member": ("reader",)}

BY_NAME = {r.name: r for r in SYSTEM_ROLES}


def permissions_of(role_names: tuple[str, ...] | list[str]) -> frozenset[Permission]:
    out: set[Permission] = set()
    for name in role_names:
        role = BY_NAME.get(name)
        if role:
            out |= role.permissions
    return frozenset(out)


def with_implied(role_names: Iterable[str]) -> set[str]:
    out: set[str] = set()
    pending = list(role_names)
    while pending:
        name = pending.pop()
        if name not in out:
            out.add(name)
            pending.extend(IMPLIES.get(name, ()))
    return out
