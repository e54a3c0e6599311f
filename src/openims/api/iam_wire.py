"""Keystone v3 wire shapes: request bodies in, token/project/user bodies out."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from openims.api.openapi_docs import model_rules
from openims.config import Settings
from openims.db.models import Domain, Group, Project, Role, User
from openims.iam.grants import role_policy


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow")


class DomainRef(_Loose):
    id: str | None = Field(default=None, max_length=64)
    name: str | None = Field(default=None, max_length=64)


class UserRef(_Loose):
    id: str | None = Field(default=None, max_length=64)
    name: str | None = Field(default=None, max_length=64)
    password: str = Field(max_length=1024)
    domain: DomainRef | None = None


class PasswordMethod(_Loose):
    user: UserRef


class TokenMethod(_Loose):
    id: str = Field(max_length=4096)


# api.token_routes: the password method if listed, else the token method; others are ignored.
AUTH_METHODS = ("password", "token")


class Identity(_Loose):
    # At least one method the service knows (Keystone's 400 otherwise).
    model_config = ConfigDict(json_schema_extra=model_rules(methods={"contains": {"enum": list(AUTH_METHODS)}}))

    methods: list[str] = Field(min_length=1, max_length=4)
    password: PasswordMethod | None = None
    token: TokenMethod | None = None


class ProjectRef(_Loose):
    id: str | None = Field(default=None, max_length=64)
    name: str | None = Field(default=None, max_length=64)
    domain: DomainRef | None = None


class Scope(_Loose):
    project: ProjectRef | None = None
    domain: DomainRef | None = None


class Auth(_Loose):
    identity: Identity
    scope: Scope | str | None = None


class AuthRequest(_Loose):
    auth: Auth


def iso(t: dt.datetime | None) -> str | None:
    if t is None:
        return None
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _entity(obj: Domain | Project | User | Group | Role, collection: str, settings: Settings,
            **fields: Any) -> dict[str, Any]:
    """The Keystone body of one object: id, name, its own fields, and the link to itself."""
    return {"id": obj.id, "name": obj.name, **fields,
            "links": {"self": f"{settings.base_url}/v3/{collection}/{obj.id}"}}


def domain_body(domain: Domain, settings: Settings) -> dict[str, Any]:
    return _entity(domain, "domains", settings, enabled=domain.enabled, description=domain.description)


def project_body(project: Project, settings: Settings) -> dict[str, Any]:
    return _entity(project, "projects", settings, domain_id=project.domain_id, parent_id=project.domain_id,
                   description=project.description, enabled=project.enabled, is_domain=False)


def user_body(user: User, settings: Settings) -> dict[str, Any]:
    return _entity(user, "users", settings, domain_id=user.domain_id, enabled=user.enabled, email=user.email or "",
                   description=user.description, password_expires_at=None, pwd_status=True, last_project_id=None)


def group_body(group: Group, settings: Settings) -> dict[str, Any]:
    # create_time as Huawei IAM writes it: milliseconds since the epoch.
    return _entity(group, "groups", settings, domain_id=group.domain_id, description=group.description,
                   create_time=int(group.created_at.timestamp() * 1000))


def role_body(role: Role, settings: Settings) -> dict[str, Any]:
    return _entity(role, "roles", settings, display_name=role.display_name, description=role.description,
                   type=role.type, catalog=role.catalog, domain_id=None, policy=role_policy(role))


def catalog(settings: Settings) -> list[dict[str, Any]]:
    """This deployment's endpoints. Identity and image carry devstack-style prefixes (see sdk-wire.md)."""
    base = settings.base_url
    services = [
        ("identity", "iam", f"{base}/identity/v3"),
        ("ims", "ims", base),
        ("image", "glance", f"{base}/image"),
    ]
    out = []
    for stype, name, url in services:
        endpoints = [
            {"id": f"{name}-{iface}", "interface": iface, "region": settings.region,
             "region_id": settings.region, "url": url}
            for iface in ("public", "internal")
        ]
        out.append({"id": name, "name": name, "type": stype, "endpoints": endpoints})
    return out
