"""IAM over HTTP: projects, users, groups, roles, grants and access keys (Keystone v3 / Huawei IAM routes).

Every IAM URL the client side uses is written here, once; the CLI calls these methods. Each
returns the object(s) of the answer, unwrapped from their envelope (``{"user": …}`` → the user).
"""

from __future__ import annotations

from typing import Any, Literal

from openims.client.session import Session

Kind = Literal["projects", "users", "groups", "roles", "domains"]
SINGULAR: dict[str, str] = {"projects": "project", "users": "user", "groups": "group", "roles": "role",
                            "domains": "domain"}
GrantTarget = Literal["project", "domain", "all_projects"]
_CREDENTIALS = "/v3.0/OS-CREDENTIAL/credentials"


class IamClient:
    def __init__(self, session: Session) -> None:
        self.session = session

    def _json(self, method: str, path: str, *, expect: tuple[int, ...] = (200,), **kw: Any) -> Any:
        return self.session.request(method, path, expect=expect, **kw).json()

    def _no_content(self, method: str, path: str, **kw: Any) -> None:
        self.session.request(method, path, expect=(204,), **kw)

    # ---------------------------------------------------------------- any kind

    def get(self, kind: Kind, object_id: str) -> dict[str, Any] | None:
        r = self.session.request("GET", f"/v3/{kind}/{object_id}", expect=(200, 404))
        found: dict[str, Any] | None = r.json()[SINGULAR[kind]] if r.status_code == 200 else None
        return found

    def listing(self, kind: Kind, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self._json("GET", f"/v3/{kind}", params=params or None)[kind]
        return items

    def delete(self, kind: Kind, object_id: str) -> None:
        self._no_content("DELETE", f"/v3/{kind}/{object_id}")

    def create(self, kind: Kind, body: dict[str, Any]) -> dict[str, Any]:
        one = SINGULAR[kind]
        created: dict[str, Any] = self._json("POST", f"/v3/{kind}", json={one: body}, expect=(201,))[one]
        return created

    def update(self, kind: Kind, object_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        one = SINGULAR[kind]
        updated: dict[str, Any] = self._json("PATCH", f"/v3/{kind}/{object_id}", json={one: changes})[one]
        return updated

    def my_domains(self) -> list[dict[str, Any]]:
        domains: list[dict[str, Any]] = self._json("GET", "/v3/auth/domains")["domains"]
        return domains

    # ---------------------------------------------------------------- projects (Huawei extensions)

    def project_details(self, project_id: str) -> dict[str, Any]:
        shown: dict[str, Any] = self._json("GET", f"/v3-ext/projects/{project_id}")["project"]
        return shown

    def set_project_status(self, project_id: str, status: str) -> None:
        self._no_content("PUT", f"/v3-ext/projects/{project_id}", json={"project": {"status": status}})

    # ---------------------------------------------------------------- users and groups

    def user_groups(self, user_id: str) -> list[dict[str, Any]]:
        groups: list[dict[str, Any]] = self._json("GET", f"/v3/users/{user_id}/groups")["groups"]
        return groups

    def change_password(self, user_id: str, original: str, new: str) -> None:
        self._no_content("POST", f"/v3/users/{user_id}/password",
                         json={"user": {"password": new, "original_password": original}})

    def group_users(self, group_id: str) -> list[dict[str, Any]]:
        users: list[dict[str, Any]] = self._json("GET", f"/v3/groups/{group_id}/users")["users"]
        return users

    def add_member(self, group_id: str, user_id: str) -> None:
        self._no_content("PUT", f"/v3/groups/{group_id}/users/{user_id}")

    def remove_member(self, group_id: str, user_id: str) -> None:
        self._no_content("DELETE", f"/v3/groups/{group_id}/users/{user_id}")

    # ---------------------------------------------------------------- grants

    @staticmethod
    def _grant_path(target: GrantTarget, target_id: str, group_id: str, role_id: str) -> str:
        if target == "project":
            return f"/v3/projects/{target_id}/groups/{group_id}/roles/{role_id}"
        if target == "domain":
            return f"/v3/domains/{target_id}/groups/{group_id}/roles/{role_id}"
        return f"/v3/OS-INHERIT/domains/{target_id}/groups/{group_id}/roles/{role_id}/inherited_to_projects"

    def grant(self, target: GrantTarget, target_id: str, group_id: str, role_id: str) -> None:
        """``target_id``: the project's id, or the account's (domain's) for ``domain``/``all_projects``."""
        self._no_content("PUT", self._grant_path(target, target_id, group_id, role_id))

    def revoke(self, target: GrantTarget, target_id: str, group_id: str, role_id: str) -> None:
        self._no_content("DELETE", self._grant_path(target, target_id, group_id, role_id))

    def role_assignments(self, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._json("GET", "/v3/role_assignments",
                                                 params=params or None)["role_assignments"]
        return found

    # ---------------------------------------------------------------- accounts (the operator's)

    def create_account(self, name: str, *, admin_user: str, admin_password: str,
                       description: str | None = None) -> dict[str, Any]:
        """An account ready for its administrator, in one step (``openims account create``): the domain
        with its project ``<region>``, a group ``admin`` holding what the bootstrap account's does
        (te_admin and secu_admin on the account, te_admin on all its projects and on ``<region>``) and
        the administrator in it. When a step fails, the half-made account is disabled and deleted.

        Returns ``{"domain", "project", "user", "group"}``."""
        body: dict[str, Any] = {"name": name, **({"description": description} if description is not None else {})}
        domain = self.create("domains", body)
        try:
            made = self._equip_account(domain, admin_user, admin_password)
        except Exception:
            self.update("domains", domain["id"], {"enabled": False})
            self.delete("domains", domain["id"])
            raise
        return {"domain": domain, **made}

    def _equip_account(self, domain: dict[str, Any], admin_user: str, admin_password: str) -> dict[str, Any]:
        domain_id = domain["id"]
        project = self.listing("projects", {"domain_id": domain_id})[0]
        user = self.create("users", {"name": admin_user, "password": admin_password, "domain_id": domain_id})
        group = self.create("groups", {"name": "admin", "description": "account administrators",
                                       "domain_id": domain_id})
        self.add_member(group["id"], user["id"])
        roles = {r["name"]: r["id"] for r in self.listing("roles")}
        grants: list[tuple[GrantTarget, str, str]] = [
            ("domain", domain_id, "te_admin"), ("domain", domain_id, "secu_admin"),
            ("all_projects", domain_id, "te_admin"), ("project", project["id"], "te_admin")]
        for target, target_id, role in grants:
            self.grant(target, target_id, group["id"], roles[role])
        return {"project": project, "user": user, "group": group}

    # ---------------------------------------------------------------- access keys

    def create_credential(self, body: dict[str, Any]) -> dict[str, Any]:
        created: dict[str, Any] = self._json("POST", _CREDENTIALS, json={"credential": body},
                                             expect=(201,))["credential"]
        return created

    def credentials(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._json("GET", _CREDENTIALS, params=params)["credentials"]
        return found

    def credential(self, access: str) -> dict[str, Any]:
        found: dict[str, Any] = self._json("GET", f"{_CREDENTIALS}/{access}")["credential"]
        return found

    def update_credential(self, access: str, change: dict[str, Any]) -> dict[str, Any]:
        updated: dict[str, Any] = self._json("PUT", f"{_CREDENTIALS}/{access}",
                                             json={"credential": change})["credential"]
        return updated

    def delete_credential(self, access: str) -> None:
        self._no_content("DELETE", f"{_CREDENTIALS}/{access}")

    def temporary_credential(self, duration_seconds: int) -> dict[str, Any]:
        body = {"auth": {"identity": {"methods": ["token"], "token": {"duration_seconds": duration_seconds}}}}
        created: dict[str, Any] = self._json("POST", "/v3.0/OS-CREDENTIAL/securitytokens", json=body,
                                             expect=(201,))["credential"]
        return created
