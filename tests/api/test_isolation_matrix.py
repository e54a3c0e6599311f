"""Tenant isolation, route by route (issue 16, item 7).

Project A (account ``acme``) holds one of every resource: an image imported through Glance's
interoperable import (active, with a task), an image imported through IMS (active, with a job), a
member entry, native and IMS tags, a bucket with an object, a user, a group, a grant, an access key,
a private metadata namespace (with an object, a property, a tag and a resource type), traces.

Every route of ``app.routes`` is then called, its path filled with A's ids, by two strangers:

* ``same``: a ``te_admin`` of project B of the same account (not an administrator of the account),
  and ``member``, a Keystone ``member`` of project B (the ``same`` column holds for both);
* ``other``: the administrator of another account.

Each route has a row in ``MATRIX`` saying what each of them gets (the documented answer: 404 for what
they may not know exists, 403 where docs/api.md says so), or is in ``EXEMPT`` with the reason it is
public. A route of the application with neither makes ``test_every_route_has_a_row`` fail, so a new
route cannot forget isolation. After each route, A's resources are read back by A's administrator and
must be as they were.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from starlette.routing import Mount

from openims.api.app import create_app
from openims.clock import ManualClock
from openims.db.models import Project
from openims.runtime import Runtime, bootstrap_runtime, build_runtime
from openims.worker.runner import Worker
from tests.api.test_operators import make_account
from tests.conftest import DB_KINDS, _truncate, login, make_settings
from tests.support.images import make_image
from tests.support.tenants import USER_PASSWORD, add_user

H = dict[str, str]

# ------------------------------------------------------------------------------------------ the rows

OWN = "own"  # the caller's own scope: any answer but a 5xx; a 2xx must name nothing of A's


@dataclass(frozen=True)
class Row:
    """What ``same`` and ``other`` get from a route called with A's ids (a status, or ``OWN``)."""

    same: int | str
    other: int | str
    body: Any = None  # JSON body
    content: bytes | None = None  # raw body instead
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # "{owner_token}" is A's administrator's token
    path: dict[str, str] = field(default_factory=dict)  # path parameters other than A's defaults
    # The account's buckets are shared by its projects (docs/api.md): the same account's write shows there.
    account_bucket: bool = False
    # The caller's own jobs from other rows name A's images it asked about (refused: "does not exist").
    echoes_images: bool = False


def n404(**kw: Any) -> Row:
    return Row(404, 404, **kw)


def own(**kw: Any) -> Row:
    return Row(OWN, OWN, **kw)


# ``{project_id}`` in an IMS path must be the token's project: with A's, 403 for everyone else
# (docs/api.md; the test checks it for every row below). With the caller's own project in the path:
# A's image or job in it is 404 (mine404); a listing names nothing of A's (mine).
def mine404(path: dict[str, str] | None = None, **kw: Any) -> Row:
    return Row(404, 404, path={"project_id": "{caller_project}", **(path or {})}, **kw)


def mine(**kw: Any) -> Row:
    return Row(OWN, OWN, path={"project_id": "{caller_project}"}, **kw)


# IAM administration: the same account's non-administrator 403, another account 404 (docs/api.md,
# "Everyone else keeps to their account").
def iam(**kw: Any) -> Row:
    return Row(403, 404, **kw)


# Operator-only routes: 403 for every tenant.
def op(**kw: Any) -> Row:
    return Row(403, 403, **kw)


PATCH_JSON = {"Content-Type": "application/openstack-images-v2.1-json-patch"}
OCTETS = {"Content-Type": "application/octet-stream"}
IMS_PATCH = [{"op": "replace", "path": "/name", "value": "stolen"}]
NATIVE_PATCH = [{"op": "replace", "path": "/name", "value": "stolen"}]
TAG = {"tag": {"key": "stolen", "value": "x"}}
BATCH_TAGS = {"action": "create", "tags": [{"key": "stolen", "value": "x"}]}

MATRIX: dict[str, Row] = {
    # --- Glance native images
    "GET /v2/images": own(),
    "POST /v2/images": own(body={"name": "mine", "disk_format": "raw", "container_format": "bare"}),
    "GET /v2/images/{image_id}": n404(),
    "PATCH /v2/images/{image_id}": n404(body=NATIVE_PATCH, headers=PATCH_JSON),
    "DELETE /v2/images/{image_id}": n404(),
    "POST /v2/images/{image_id}/actions/deactivate": n404(),
    "POST /v2/images/{image_id}/actions/reactivate": n404(),
    "PUT /v2/images/{image_id}/file": n404(content=b"x" * 512, headers=OCTETS),
    "PUT /v2/images/{image_id}/stage": n404(content=b"x" * 512, headers=OCTETS),
    "GET /v2/images/{image_id}/file": n404(),
    "GET /v2/info/import": own(),
    "GET /v2/info/stores": own(),
    "GET /v2/info/stores/detail": own(),
    # One store: 404 "Multi backend is not supported" to anyone; the route still names A's image.
    "DELETE /v2/stores/{store_id}/{image_id}": n404(path={"store_id": "default"}),
    "POST /v2/images/{image_id}/import": n404(body={"method": {"name": "glance-direct"}}),
    "GET /v2/images/{image_id}/tasks": n404(),
    # --- IMS
    "POST /v2.1/cloudimages/action": own(body={"name": "mine", "image_url": "acme-bkt:disk.qcow2", "min_disk": 40,
                                               "os_version": "CentOS 7.0 64bit"}),
    "POST /v2/cloudimages/action": own(body={"name": "mine", "image_url": "acme-bkt:disk.qcow2", "min_disk": 40,
                                             "os_version": "CentOS 7.0 64bit"}),
    "POST /v2.1/cloudimages/dataimages/action": own(body={"name": "mine", "image_url": "acme-bkt:disk.qcow2",
                                                          "min_disk": 40}),
    "POST /v1/cloudimages/dataimages/action": own(body={"name": "mine", "image_url": "acme-bkt:disk.qcow2",
                                                        "min_disk": 40}),
    "GET /v1/{project_id}/jobs": mine(echoes_images=True),
    "GET /v1/{project_id}/jobs/{job_id}": mine404(),
    "GET /v1/{project_id}/jobs/{job_id}/events": mine404(),
    "GET /v1/cloudimages/job/{job_id}": n404(),
    "GET /v2/cloudimages": own(),
    "PATCH /v2/cloudimages/{image_id}": n404(body=IMS_PATCH),
    "POST /v2.1/cloudimages/quickimport/action": own(body={"name": "mine", "image_url": "acme-bkt:disk.qcow2",
                                                           "min_disk": 40, "os_version": "CentOS 7.0 64bit",
                                                           "type": "ECS"}),
    "POST /v2/cloudimages/quickimport/action": own(body={"name": "mine", "image_url": "acme-bkt:disk.qcow2",
                                                         "min_disk": 40, "os_version": "CentOS 7.0 64bit",
                                                         "type": "ECS"}),
    "POST /v1/cloudimages/{image_id}/upload": n404(body={"image_url": "acme-bkt:disk.qcow2"}),
    "PUT /v1/cloudimages/{image_id}/upload": n404(body={"image_url": "acme-bkt:disk.qcow2"}),
    "POST /v2.1/cloudimages/{image_id}/file": n404(body={"bucket_url": "acme-bkt:out.qcow2",
                                                         "file_format": "qcow2"}),
    "POST /v1/cloudimages/{image_id}/file": n404(body={"bucket_url": "acme-bkt:out.qcow2", "file_format": "qcow2"}),
    "POST /v2.1/cloudimages/{image_id}/copy": n404(body={"name": "copy"}),
    "POST /v1/cloudimages/{image_id}/copy": n404(body={"name": "copy"}),
    # ``?project_id=`` names another project of the account: account administrators only (docs/api.md).
    "GET /v1/cloudimages/quota": iam(params={"project_id": "{project_id}"}),
    "PUT /v1/cloudimages/quota": iam(params={"project_id": "{project_id}"},
                                     body={"quotas": {"resources": [{"type": "image", "quota": 1}]}}),
    "GET /v1/cloudimages/os_version": own(),
    # --- tags
    "POST /v2/{project_id}/images/{image_id}/tags": mine404(body=TAG),
    "GET /v2/{project_id}/images/tags": mine(),
    "GET /v2/{project_id}/images/{image_id}/tags": mine404(),
    "DELETE /v2/{project_id}/images/{image_id}/tags/{key}": mine404({"key": "env"}),
    "POST /v2/{project_id}/images/{image_id}/tags/action": mine404(body=BATCH_TAGS),
    "DELETE /v1/{project_id}/cloudimages/{image_id}/tags/delete": mine404(body={"tags": [{"key": "env"}]}),
    "POST /v2/{project_id}/images/resource_instances/action": mine(body={"action": "filter"}),
    "PUT /v1/cloudimages/tags": n404(body={"image_id": "{image_id}", "tag": "stolen.x"}),
    "GET /v1/cloudimages/tags": own(),
    "PUT /v2/images/{image_id}/tags/{tag}": n404(path={"tag": "stolen"}),
    "DELETE /v2/images/{image_id}/tags/{tag}": n404(path={"tag": "blue"}),
    # --- sharing
    "POST /v1/cloudimages/members": own(body={"images": ["{image_id}"], "projects": ["{member_id}"]}),
    "DELETE /v1/cloudimages/members": own(body={"images": ["{image_id}"], "projects": ["{member_id}"]}),
    "PUT /v1/cloudimages/members": own(body={"images": ["{image_id}"], "project_id": "{member_id}",
                                             "status": "rejected"}),
    "GET /v1/{project_id}/cloudimages/{image_id}/members": mine404(),
    "GET /v1/{project_id}/cloudimages/{image_id}/members/{member_id}": mine404(),
    "POST /v2/images/{image_id}/members": n404(body={"member": "{caller_project}"}),
    "GET /v2/images/{image_id}/members": n404(),
    "GET /v2/images/{image_id}/members/{member_id}": n404(),
    "PUT /v2/images/{image_id}/members/{member_id}": n404(body={"status": "rejected"}),
    "DELETE /v2/images/{image_id}/members/{member_id}": n404(),
    # --- metadata definitions (a private namespace of A)
    "GET /v2/metadefs/namespaces": own(),
    "POST /v2/metadefs/namespaces": own(body={"namespace": "stranger-ns"}),
    "GET /v2/metadefs/namespaces/{namespace}": n404(),
    "PUT /v2/metadefs/namespaces/{namespace}": n404(body={"namespace": "acme-ns", "description": "stolen"}),
    "DELETE /v2/metadefs/namespaces/{namespace}": n404(),
    "GET /v2/metadefs/namespaces/{namespace}/objects": n404(),
    "POST /v2/metadefs/namespaces/{namespace}/objects": n404(body={"name": "stolen"}),
    "DELETE /v2/metadefs/namespaces/{namespace}/objects": n404(),
    "GET /v2/metadefs/namespaces/{namespace}/objects/{object_name}": n404(),
    "PUT /v2/metadefs/namespaces/{namespace}/objects/{object_name}": n404(body={"name": "obj1",
                                                                                 "description": "stolen"}),
    "DELETE /v2/metadefs/namespaces/{namespace}/objects/{object_name}": n404(),
    "GET /v2/metadefs/namespaces/{namespace}/properties": n404(),
    "POST /v2/metadefs/namespaces/{namespace}/properties": n404(body={"name": "stolen", "title": "t",
                                                                      "type": "string"}),
    "DELETE /v2/metadefs/namespaces/{namespace}/properties": n404(),
    "GET /v2/metadefs/namespaces/{namespace}/properties/{property_name}": n404(),
    "PUT /v2/metadefs/namespaces/{namespace}/properties/{property_name}": n404(
        body={"name": "prop1", "title": "stolen", "type": "string"}),
    "DELETE /v2/metadefs/namespaces/{namespace}/properties/{property_name}": n404(),
    "GET /v2/metadefs/namespaces/{namespace}/tags": n404(),
    "POST /v2/metadefs/namespaces/{namespace}/tags": n404(body={"tags": [{"name": "stolen"}]}),
    "DELETE /v2/metadefs/namespaces/{namespace}/tags": n404(),
    "GET /v2/metadefs/namespaces/{namespace}/tags/{tag_name}": n404(),
    "POST /v2/metadefs/namespaces/{namespace}/tags/{tag_name}": n404(path={"tag_name": "stolen"}),
    "PUT /v2/metadefs/namespaces/{namespace}/tags/{tag_name}": n404(body={"name": "stolen"}),
    "DELETE /v2/metadefs/namespaces/{namespace}/tags/{tag_name}": n404(),
    "GET /v2/metadefs/resource_types": own(),
    "GET /v2/metadefs/namespaces/{namespace}/resource_types": n404(),
    "POST /v2/metadefs/namespaces/{namespace}/resource_types": n404(body={"name": "OS::Cinder::Volume"}),
    "DELETE /v2/metadefs/namespaces/{namespace}/resource_types/{resource_type}": n404(),
    # --- buckets: they belong to the account, so project B of the same account shares them (docs/api.md)
    "GET /obs": own(),
    # Bucket names are one namespace (as S3's): another account's name is taken (409 IMG.0038).
    "PUT /obs/{bucket}": Row(OWN, 409),
    "GET /obs/{bucket}": Row(OWN, 404),
    "PUT /obs/{bucket}/{key:path}": Row(OWN, 404, content=b"stranger", path={"key:path": "stranger.bin"},
                                        account_bucket=True),
    # --- IAM: identities and tokens
    "GET /v3/auth/tokens": Row(404, 404, headers={"X-Subject-Token": "{owner_token}"}),
    "HEAD /v3/auth/tokens": Row(404, 404, headers={"X-Subject-Token": "{owner_token}"}),
    "DELETE /v3/auth/tokens": Row(404, 404, headers={"X-Subject-Token": "{owner_token}"}),
    "GET /v3/projects": own(),  # non-administrators: the projects they hold a role on
    "GET /v3/auth/projects": own(),
    "GET /v3/auth/domains": own(),
    "GET /v3/projects/{project_id}": iam(),
    "GET /v3/users/{user_id}": iam(),
    "POST /v3/domains": op(body={"domain": {"name": "stolen"}}),
    "GET /v3/domains": op(),
    "GET /v3/domains/{domain_id}": op(),
    "PATCH /v3/domains/{domain_id}": op(body={"domain": {"enabled": False}}),
    "DELETE /v3/domains/{domain_id}": op(),
    # A domain_id naming the account in a body: 403 to anyone but its administrators (docs/api.md).
    "POST /v3/projects": Row(403, 403, body={"project": {"name": "local-1_stolen", "domain_id": "{domain_id}"}}),
    "PATCH /v3/projects/{project_id}": iam(body={"project": {"description": "stolen"}}),
    "DELETE /v3/projects/{project_id}": iam(),
    "GET /v3-ext/projects/{project_id}": iam(),
    "PUT /v3-ext/projects/{project_id}": iam(body={"project": {"status": "suspended"}}),
    "POST /v3/users": Row(403, 403, body={"user": {"name": "stolen", "password": "Stolen-pass-1234",
                                                   "domain_id": "{domain_id}"}}),
    "GET /v3/users": Row(403, OWN),
    "PATCH /v3/users/{user_id}": iam(body={"user": {"enabled": False}}),
    "DELETE /v3/users/{user_id}": iam(),
    "POST /v3/users/{user_id}/password": iam(body={"user": {"original_password": USER_PASSWORD,
                                                            "password": "Stolen-pass-1234"}}),
    "GET /v3/users/{user_id}/groups": iam(),
    "POST /v3/groups": Row(403, 403, body={"group": {"name": "stolen", "domain_id": "{domain_id}"}}),
    "GET /v3/groups": Row(403, OWN),
    "GET /v3/groups/{group_id}": iam(),
    "PATCH /v3/groups/{group_id}": iam(body={"group": {"description": "stolen"}}),
    "DELETE /v3/groups/{group_id}": iam(),
    "GET /v3/groups/{group_id}/users": iam(),
    "PUT /v3/groups/{group_id}/users/{user_id}": iam(path={"user_id": "{caller_user}"}),
    "HEAD /v3/groups/{group_id}/users/{user_id}": iam(),
    "DELETE /v3/groups/{group_id}/users/{user_id}": iam(),
    "GET /v3/roles": own(),
    "GET /v3/roles/{role_id}": own(),
    "GET /v3/projects/{project_id}/groups/{group_id}/roles": iam(),
    "PUT /v3/projects/{project_id}/groups/{group_id}/roles/{role_id}": iam(),
    "HEAD /v3/projects/{project_id}/groups/{group_id}/roles/{role_id}": iam(),
    "DELETE /v3/projects/{project_id}/groups/{group_id}/roles/{role_id}": iam(),
    "GET /v3/domains/{domain_id}/groups/{group_id}/roles": iam(),
    "PUT /v3/domains/{domain_id}/groups/{group_id}/roles/{role_id}": iam(),
    "HEAD /v3/domains/{domain_id}/groups/{group_id}/roles/{role_id}": iam(),
    "DELETE /v3/domains/{domain_id}/groups/{group_id}/roles/{role_id}": iam(),
    "GET /v3/OS-INHERIT/domains/{domain_id}/groups/{group_id}/roles/inherited_to_projects": iam(),
    "PUT /v3/OS-INHERIT/domains/{domain_id}/groups/{group_id}/roles/{role_id}/inherited_to_projects": iam(),
    "HEAD /v3/OS-INHERIT/domains/{domain_id}/groups/{group_id}/roles/{role_id}/inherited_to_projects": iam(),
    "DELETE /v3/OS-INHERIT/domains/{domain_id}/groups/{group_id}/roles/{role_id}/inherited_to_projects": iam(),
    "GET /v3/projects/{project_id}/users/{user_id}/roles": iam(),
    "PUT /v3/projects/{project_id}/users/{user_id}/roles/{role_id}": iam(),
    "HEAD /v3/projects/{project_id}/users/{user_id}/roles/{role_id}": iam(),
    "DELETE /v3/projects/{project_id}/users/{user_id}/roles/{role_id}": iam(),
    "GET /v3/domains/{domain_id}/users/{user_id}/roles": iam(),
    "PUT /v3/domains/{domain_id}/users/{user_id}/roles/{role_id}": iam(),
    "HEAD /v3/domains/{domain_id}/users/{user_id}/roles/{role_id}": iam(),
    "DELETE /v3/domains/{domain_id}/users/{user_id}/roles/{role_id}": iam(),
    "GET /v3/OS-INHERIT/domains/{domain_id}/users/{user_id}/roles/inherited_to_projects": iam(),
    "PUT /v3/OS-INHERIT/domains/{domain_id}/users/{user_id}/roles/{role_id}/inherited_to_projects": iam(),
    "HEAD /v3/OS-INHERIT/domains/{domain_id}/users/{user_id}/roles/{role_id}/inherited_to_projects": iam(),
    "DELETE /v3/OS-INHERIT/domains/{domain_id}/users/{user_id}/roles/{role_id}/inherited_to_projects": iam(),
    "GET /v3/role_assignments": Row(403, OWN),
    # --- access keys
    "POST /v3.0/OS-CREDENTIAL/credentials": iam(body={"credential": {"user_id": "{user_id}"}}),
    "GET /v3.0/OS-CREDENTIAL/credentials": Row(OWN, OWN, params={"user_id": "{user_id}"}),
    "GET /v3.0/OS-CREDENTIAL/credentials/{access_key}": iam(),
    "PUT /v3.0/OS-CREDENTIAL/credentials/{access_key}": iam(body={"credential": {"status": "inactive"}}),
    "DELETE /v3.0/OS-CREDENTIAL/credentials/{access_key}": iam(),
    "POST /v3.0/OS-CREDENTIAL/securitytokens": own(body={"auth": {"identity": {"methods": ["token"]}}}),
    "GET /v5/caller-identity": own(),
    # --- legacy IMS routes
    "GET /v1.1/images/detail": own(),
    "HEAD /v1/images/{image_id}": n404(),
    "DELETE /v1.1/images/{image_id}": n404(),
    # No servers here: 400 IMG.0005 for any instance id, whoever asks.
    "POST /v1/cloudimages/wholeimages/action": own(body={"name": "whole", "instance_id": "{image_id}"}),
    # --- audit traces
    "GET /v3/{project_id}/traces": Row(403, 404),
}

# Public by design: no tenant data behind them.
EXEMPT: dict[str, str] = {
    "GET /openapi.json": "the API description",
    "HEAD /openapi.json": "the API description",
    "GET /docs": "the API description (Swagger UI)",
    "HEAD /docs": "the API description (Swagger UI)",
    "GET /docs/oauth2-redirect": "Swagger UI's helper page",
    "HEAD /docs/oauth2-redirect": "Swagger UI's helper page",
    "GET /": "version document",
    "GET /v1/": "version document",
    "GET /v1": "version document",
    "GET /v2/": "version document",
    "GET /v2": "version document",
    "GET /image/": "version document",
    "GET /image": "version document",
    "GET /versions": "version document",
    "GET /identity/": "version document",
    "GET /identity": "version document",
    "GET /v3/": "version document",
    "GET /v3": "version document",
    "POST /v3/auth/tokens": "token creation (authenticates by its body)",
    "GET /v2/schemas/{name:path}": "Glance's JSON schemas: a token is needed, the answer is the same for everyone",
    "GET /metrics": "Prometheus metrics (address allow-list, no tenant data)",
    "GET /healthz": "liveness probe",
    "GET /readyz": "readiness probe",
}
# Path prefixes exempt as a whole.
EXEMPT_PREFIXES: dict[str, str] = {
    "/console": "the web console's static files (it calls the API like any client)",
}


def app_route_keys(app: Any) -> set[str]:
    """Every ``METHOD path`` the application answers, walking included routers and mounts."""
    keys: set[str] = set()

    def walk(routes: Any) -> None:
        for route in routes:
            inner = getattr(route, "original_router", None)
            if inner is not None:
                walk(inner.routes)
            elif isinstance(route, Mount):
                keys.add(f"MOUNT {route.path}")
            else:
                for method in getattr(route, "methods", None) or ():
                    keys.add(f"{method} {route.path}")

    walk(app.routes)
    return keys


# ------------------------------------------------------------------------------------------ the world


@dataclass
class World:
    client: TestClient
    runtime: Runtime
    owner: H  # A's administrator (te_admin + secu_admin of account acme)
    callers: dict[str, H]
    caller_ids: dict[str, dict[str, str]]  # per caller: its project and user ids
    ids: dict[str, str]  # path parameter -> A's value
    secrets: list[str]  # strings a stranger's 2xx must never contain
    # A's resources as the last row left them (``snapshot``): each row compares its own "after" with it,
    # which is the row's "before" (nothing runs between the rows), read once instead of twice.
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def image_ids(self) -> tuple[str, str]:
        return self.ids["image_id"], self.ids["ims_image_id"]


def _ok(r: httpx.Response, *statuses: int) -> Any:
    assert r.status_code in (statuses or (200,)), r.text
    return r.json() if r.content and r.headers.get("content-type", "").startswith("application/json") else None


def _project_id(rt: Runtime, domain_name: str, project: str) -> str:
    from openims.db.models import Domain
    with rt.db.transaction() as s:
        domain_id = s.execute(select(Domain.id).where(Domain.name == domain_name)).scalar_one()
        return str(s.execute(select(Project.id).where(Project.domain_id == domain_id,
                                                      Project.name == project)).scalar_one())


def _build(client: TestClient, rt: Runtime, tmp: Path) -> World:
    operator = {"X-Auth-Token": login(client)}
    acme = make_account(client, operator, "acme", "acmeadmin")
    owner = {"X-Auth-Token": acme["token"]}
    project = acme["project"]
    # Resources of project A, made by its administrator.
    qcow2 = make_image(tmp / "src", "qcow2", size=1 << 20)
    _ok(client.put("/obs/acme-bkt/disk.qcow2", content=qcow2.read_bytes(), headers=owner), 201)
    job_id = _ok(client.post("/v2/cloudimages/action", headers=owner, json={
        "name": "ims-img", "image_url": "acme-bkt:disk.qcow2", "min_disk": 40,
        "os_version": "CentOS 7.0 64bit"}))["job_id"]
    Worker(rt).run_until_idle()
    job = _ok(client.get(f"/v1/{project}/jobs/{job_id}", headers=owner))
    assert job["status"] == "SUCCESS", job
    image = _ok(client.post("/v2/images", headers=owner, json={
        "name": "glance-img", "disk_format": "raw", "container_format": "bare", "visibility": "shared"}), 201)
    image_id = image["id"]
    _ok(client.put(f"/v2/images/{image_id}/stage", content=b"\0" * 65536, headers={**owner, **OCTETS}), 204)
    _ok(client.post(f"/v2/images/{image_id}/import", json={"method": {"name": "glance-direct"}}, headers=owner), 202)
    Worker(rt).run_until_idle()
    assert _ok(client.get(f"/v2/images/{image_id}", headers=owner))["status"] == "active"
    # A member of a third account, tags of both kinds.
    add_user(rt.db, name="carol", role="te_admin", domain_name="carol-account")
    member_id = _project_id(rt, "carol-account", "local-1")
    _ok(client.post(f"/v2/images/{image_id}/members", json={"member": member_id}, headers=owner))
    _ok(client.put(f"/v2/images/{image_id}/tags/blue", headers=owner), 204)
    _ok(client.post(f"/v2/{project}/images/{image_id}/tags", json={"tag": {"key": "env", "value": "prod"}},
                    headers=owner), 204)
    # Identities and an access key.
    user_id = _ok(client.post("/v3/users", json={"user": {"name": "alice", "password": USER_PASSWORD}},
                              headers=owner), 201)["user"]["id"]
    group_id = _ok(client.post("/v3/groups", json={"group": {"name": "staff"}}, headers=owner), 201)["group"]["id"]
    _ok(client.put(f"/v3/groups/{group_id}/users/{user_id}", headers=owner), 204)
    roles = _ok(client.get("/v3/roles", params={"name": "member"}, headers=owner))["roles"]
    role_id = roles[0]["id"]
    _ok(client.put(f"/v3/projects/{project}/groups/{group_id}/roles/{role_id}", headers=owner), 204)
    _ok(client.put(f"/v3/projects/{project}/users/{user_id}/roles/{role_id}", headers=owner), 204)
    _ok(client.put(f"/v3/domains/{acme['domain']}/users/{user_id}/roles/{role_id}", headers=owner), 204)
    _ok(client.put(f"/v3/domains/{acme['domain']}/groups/{group_id}/roles/{role_id}", headers=owner), 204)
    _ok(client.put(f"/v3/OS-INHERIT/domains/{acme['domain']}/groups/{group_id}/roles/{role_id}"
                   "/inherited_to_projects", headers=owner), 204)
    _ok(client.put(f"/v3/OS-INHERIT/domains/{acme['domain']}/users/{user_id}/roles/{role_id}"
                   "/inherited_to_projects", headers=owner), 204)
    access = _ok(client.post("/v3.0/OS-CREDENTIAL/credentials", json={"credential": {"user_id": user_id}},
                             headers=owner), 201)["credential"]["access"]
    # A private metadata namespace with one of everything.
    _ok(client.post("/v2/metadefs/namespaces", headers=owner, json={
        "namespace": "acme-ns", "visibility": "private",
        "objects": [{"name": "obj1"}], "properties": {"prop1": {"title": "p", "type": "string"}},
        "tags": [{"name": "mtag1"}], "resource_type_associations": [{"name": "OS::Glance::Image"}]}), 201)
    # The strangers.
    add_user(rt.db, name="bob", role="te_admin", domain_name="acme", project_name="local-1_b")
    same = {"X-Auth-Token": login(client, "bob", USER_PASSWORD, domain="acme", project="local-1_b")}
    add_user(rt.db, name="carl", role="member", domain_name="acme", project_name="local-1_b")
    member = {"X-Auth-Token": login(client, "carl", USER_PASSWORD, domain="acme", project="local-1_b")}
    evil = make_account(client, operator, "evil", "eviladmin")
    other = {"X-Auth-Token": evil["token"]}

    def me(headers: H) -> dict[str, str]:
        token = _ok(client.get("/v3/auth/tokens", headers={**headers, "X-Subject-Token": headers["X-Auth-Token"]}))
        return {"caller_project": token["token"]["project"]["id"], "caller_user": token["token"]["user"]["id"]}

    ids = {"image_id": image_id, "job_id": job_id, "project_id": project, "member_id": member_id, "key": "env",
           "tag": "blue", "namespace": "acme-ns", "object_name": "obj1", "property_name": "prop1",
           "tag_name": "mtag1", "resource_type": "OS::Glance::Image", "bucket": "acme-bkt", "key:path": "disk.qcow2",
           "user_id": user_id, "group_id": group_id, "domain_id": acme["domain"], "role_id": role_id,
           "access_key": access, "store_id": "default", "owner_token": owner["X-Auth-Token"],
           "ims_image_id": job["entities"]["image_id"]}
    secrets = [image_id, job_id, job["entities"]["image_id"], project, user_id, group_id, access, "acme-ns",
               "glance-img", "ims-img", "alice"]
    return World(client, rt, owner, {"same": same, "member": member, "other": other},
                 {"same": me(same), "member": me(member), "other": me(other)}, ids, secrets)


@pytest.fixture(scope="module", params=DB_KINDS)
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp(f"isolation-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{tmp / 'openims.db'}"
    else:
        url = request.getfixturevalue("pg_database")
        _truncate(url)
    rt = build_runtime(make_settings(tmp / "data", url), ManualClock(), upgrade=url.startswith("sqlite"))
    bootstrap_runtime(rt)
    try:
        with TestClient(create_app(rt), raise_server_exceptions=False) as client:
            world = _build(client, rt, tmp)
            world.state = snapshot(world)
            yield world
    finally:
        rt.close()
        if request.param != "sqlite":
            _truncate(url)


def snapshot(w: World) -> dict[str, Any]:
    """A's resources as A's administrator reads them."""
    i = w.ids
    paths = [f"/v2/images/{i['image_id']}", f"/v2/images/{i['ims_image_id']}", f"/v2/images/{i['image_id']}/members",
             f"/v2/images/{i['image_id']}/tasks", f"/v2/{i['project_id']}/images/{i['image_id']}/tags",
             f"/v1/{i['project_id']}/jobs/{i['job_id']}", "/obs/acme-bkt", "/v1/cloudimages/quota",
             f"/v3/users/{i['user_id']}", f"/v3/groups/{i['group_id']}", f"/v3/groups/{i['group_id']}/users",
             f"/v3/projects/{i['project_id']}", f"/v3-ext/projects/{i['project_id']}",
             f"/v3/role_assignments?scope.project.id={i['project_id']}",
             f"/v3.0/OS-CREDENTIAL/credentials/{i['access_key']}", "/v2/metadefs/namespaces/acme-ns",
             "/v2/metadefs/namespaces/acme-ns/resource_types", f"/v2/images/{i['image_id']}/file"]
    out: dict[str, Any] = {}
    for path in paths:
        r = w.client.get(path, headers=w.owner)
        assert r.status_code == 200, f"A's administrator cannot read {path} any more: {r.status_code} {r.text}"
        out[path] = r.json() if path.endswith("/file") is False else r.content
    return out


def _fill(value: Any, values: dict[str, str]) -> Any:
    if isinstance(value, str):
        for name, v in values.items():
            value = value.replace("{" + name + "}", v)
        return value
    if isinstance(value, list):
        return [_fill(v, values) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, values) for k, v in value.items()}
    return value


def _check(key: str, who: str, expected: int | str, r: httpx.Response, secrets: list[str]) -> None:
    where = f"{key} as {who}: {r.status_code} {r.text[:300]}"
    assert r.status_code < 500, where
    if expected == OWN:
        if 200 <= r.status_code < 300:
            leaked = [s for s in secrets if s in r.text]
            assert not leaked, f"{where} names A's {leaked}"
        return
    assert r.status_code == expected, where
    if r.status_code >= 400 and r.request.method != "HEAD":
        err = r.json()
        assert "error" in err or "error_code" in err or "message" in err, where  # IMS, Keystone, CTS, Glance
        if "error" in err and isinstance(err["error"].get("code"), str):
            assert err["error"]["code"].startswith(("IMG.", "APIGW.")), where
        asked = str(r.request.url) + r.request.content.decode(errors="replace")
        assert not [s for s in secrets if s in r.text and s not in asked], where  # an echo of the request is no leak


# ------------------------------------------------------------------------------------------ the tests


def test_every_route_has_a_row(tmp_path: Path) -> None:
    rt = build_runtime(make_settings(tmp_path / "data", f"sqlite:///{tmp_path / 'x.db'}"), ManualClock(),
                       upgrade=True)
    try:
        keys = app_route_keys(create_app(rt))
    finally:
        rt.close()
    both = set(MATRIX) & set(EXEMPT)
    assert not both, f"both in the matrix and exempt: {sorted(both)}"
    keys = {k for k in keys if not k.split(" ", 1)[1].startswith(tuple(EXEMPT_PREFIXES))}
    missing = keys - set(MATRIX) - set(EXEMPT)
    assert not missing, f"routes without an isolation row (add one to MATRIX, or to EXEMPT with a reason): " \
                        f"{sorted(missing)}"
    stale = (set(MATRIX) | set(EXEMPT)) - keys
    assert not stale, f"rows for routes the application no longer has: {sorted(stale)}"


@pytest.mark.parametrize("key", sorted(MATRIX))
def test_route_keeps_to_its_tenant(world: World, key: str) -> None:
    row = MATRIX[key]
    method, template = key.split(" ", 1)
    before = world.state
    jobs: list[tuple[str, H, str, str]] = []
    for who, headers in world.callers.items():
        values = {**world.ids, **world.caller_ids[who]}
        values.update(_fill(row.path, values))
        path = _fill(template, values)
        kwargs: dict[str, Any] = {"headers": {**headers, **_fill(row.headers, values)},
                                  "params": _fill(row.params, values)}
        if row.content is not None:
            kwargs["content"] = row.content
        elif row.body is not None:
            kwargs["content"] = json.dumps(_fill(row.body, values))
            kwargs["headers"].setdefault("Content-Type", "application/json")
        r = world.client.request(method, path, **kwargs)
        secrets = [s for s in world.secrets if not (row.echoes_images and s in world.image_ids)]
        _check(key, who, row.other if who == "other" else row.same, r, secrets)
        if row.path.get("project_id") == "{caller_project}":  # and A's project in the path: 403
            forbidden = world.client.request(method, _fill(template, {**values, "project_id": world.ids["project_id"]}),
                                             **kwargs)
            _check(key + " (A's project in the path)", who, 403, forbidden, world.secrets)
        started = r.json() if r.status_code == 200 and r.text.startswith('{"job_id"') else {}
        if "job_id" in started:  # an asynchronous call: its job is read back below
            jobs.append((who, headers, started["job_id"], str(r.request.url) + r.request.content.decode()))
    Worker(world.runtime).run_until_idle()  # a job a stranger started must not touch A either
    for who, headers, job_id, asked in jobs:  # nor tell the stranger about A in its result
        job = world.client.get(f"/v1/cloudimages/job/{job_id}", headers=headers)
        assert job.status_code == 200, job.text
        told = [s for s in world.secrets if s in job.text and s not in asked]
        assert not told, f"{key} as {who}: its job names A's {told}: {job.text[:300]}"
    after = world.state = snapshot(world)
    ignored = {"/obs/acme-bkt"} if row.account_bucket else set()
    changed = sorted(p for p in before.keys() | after.keys() if p not in ignored and before.get(p) != after.get(p))
    assert not changed, f"{key} changed A's resources: {changed}"


def test_a_project_administrator_sets_no_quota(world: World) -> None:
    """Found by the matrix: ``te_admin`` of one project is no account administrator, so it sets no
    quota, not even its own project's (docs/api.md: account administrators only)."""
    body = {"quotas": {"resources": [{"type": "image", "quota": 100_000}]}}
    r = world.client.put("/v1/cloudimages/quota", json=body, headers=world.callers["same"])
    assert r.status_code == 403 and r.json()["error"]["code"] == "IMG.0026", r.text
    r = world.client.put("/v1/cloudimages/quota", json=body, headers=world.callers["other"])
    assert r.status_code == 200, r.text  # an account administrator, its own project


@pytest.mark.parametrize("key", sorted(k for k in EXEMPT if not k.startswith("POST ")))
def test_exempt_routes_are_public(client: TestClient, admin_headers: H, key: str) -> None:
    """An exemption holds only for what answers without a token (the schemas: to any token)."""
    method, path = key.split(" ", 1)
    headers = admin_headers if "/schemas/" in path else {}
    r = client.request(method, path.replace("{name:path}", "image"), headers=headers)
    assert r.status_code in (200, 300), f"{key}: {r.status_code} {r.text[:200]}"
