"""Native image API (Glance v2) through HTTP: create, show, JSON-patch update, delete, list, schemas."""

from __future__ import annotations

import datetime as dt
from typing import Any

import jsonschema
from fastapi.testclient import TestClient
from sqlalchemy import update

from openims.clock import ManualClock
from openims.db.models import Image, ImageMember
from openims.runtime import Runtime
from tests.conftest import login, new_tenant
from tests.support.tenants import add_user

PATCH = "application/openstack-images-v2.1-json-patch"
PATCH_V20 = "application/openstack-images-v2.0-json-patch"
UUID1 = "5b0f6f5e-8e3c-4a8e-9f0e-1d2c3b4a5f60"


# ---------------------------------------------------------------- helpers (also used by test_glance_data)


def project_of(client: TestClient, headers: dict[str, str]) -> str:
    project_id: str = client.get("/v3/auth/projects", headers=headers).json()["projects"][0]["id"]
    return project_id


def create(client: TestClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    r = client.post("/v2/images", json=body, headers=headers)
    assert r.status_code == 201, r.text
    image: dict[str, Any] = r.json()
    return image


def patch(client: TestClient, headers: dict[str, str], image_id: str, ops: Any,
          media_type: str = PATCH) -> Any:
    return client.patch(f"/v2/images/{image_id}", json=ops, headers={**headers, "Content-Type": media_type})


def other_account(client: TestClient, rt: Runtime, name: str = "stranger", role: str = "te_admin") -> dict[str, str]:
    """A user of another account (its own project): it must not see the admin's images."""
    return new_tenant(client, rt, name, role=role)


def share(rt: Runtime, image_id: str, member_project: str, status: str = "accepted") -> None:
    """Make the image shared with a project, straight in the database (the sharing API is tested elsewhere)."""
    now = rt.clock()
    with rt.db.transaction() as s:
        s.execute(update(Image).where(Image.id == image_id).values(visibility="shared", image_type="shared"))
        s.add(ImageMember(image_id=image_id, member_id=member_project, status=status, created_at=now,
                          updated_at=now))


def set_columns(rt: Runtime, image_id: str, **values: Any) -> None:
    with rt.db.transaction() as s:
        s.execute(update(Image).where(Image.id == image_id).values(**values))


def error_code(r: Any) -> str:
    code: str = r.json()["error"]["code"]
    return code


# ---------------------------------------------------------------- schemas and discovery


class TestSchemas:
    def test_needs_a_token(self, client: TestClient) -> None:
        assert client.get("/v2/schemas/image").status_code == 401

    def test_image_schema_describes_what_we_return(self, client: TestClient, admin_headers: dict[str, str]) -> None:
        schema = client.get("/v2/schemas/image", headers=admin_headers).json()
        assert schema["name"] == "image"
        assert schema["additionalProperties"] == {"type": "string"}
        props = schema["properties"]
        assert props["disk_format"]["type"] == ["null", "string"]
        assert None in props["disk_format"]["enum"] and "qcow2" in props["disk_format"]["enum"]
        assert props["container_format"]["enum"] == [None, "ami", "ari", "aki", "bare", "ovf", "ova", "docker",
                                                     "compressed"]
        assert set(props["status"]["enum"]) >= {"queued", "saving", "active", "killed"}
        assert set(props["visibility"]["enum"]) == {"public", "private", "shared"}
        assert props["checksum"]["readOnly"] is True and props["size"]["type"] == ["null", "integer"]
        assert props["os_hash_value"]["maxLength"] == 128
        assert {link["rel"] for link in schema["links"]} == {"self", "enclosure", "describedby"}
        # A queued image and a fully populated one (custom and IMS properties) validate, as glanceclient checks.
        image = create(client, admin_headers, name="valid", disk_format="qcow2", tags=["x"], purpose="test",
                       __os_version="CentOS 7.0 64bit")
        body = client.get(f"/v2/images/{image['id']}", headers=admin_headers).json()
        jsonschema.validate(body, schema)
        listing = client.get("/v2/images", headers=admin_headers).json()
        jsonschema.validate(listing, client.get("/v2/schemas/images", headers=admin_headers).json())

    def test_list_and_member_schemas(self, client: TestClient, admin_headers: dict[str, str]) -> None:
        images = client.get("/v2/schemas/images", headers=admin_headers).json()
        assert images["name"] == "images"
        assert images["properties"]["images"]["items"]["name"] == "image"
        assert {link["rel"] for link in images["links"]} == {"first", "next", "describedby"}
        member = client.get("/v2/schemas/member", headers=admin_headers).json()
        assert member["properties"]["status"]["enum"] == ["pending", "accepted", "rejected"]
        members = client.get("/v2/schemas/members", headers=admin_headers).json()
        assert members["properties"]["members"]["items"]["name"] == "member"
        r = client.get("/v2/schemas/nothing", headers=admin_headers)
        assert r.status_code == 404

    def test_import_info_under_the_image_prefix(self, client: TestClient, admin_headers: dict[str, str]) -> None:
        r = client.get("/image/v2/info/import", headers=admin_headers)
        assert r.status_code == 200
        assert r.json()["import-methods"]["value"] == ["glance-direct", "web-download", "copy-image"]


# ---------------------------------------------------------------- create


class TestCreate:
    def test_queued_image_from_metadata(self, client: TestClient, admin_headers: dict[str, str]) -> None:
        r = client.post("/v2/images", headers=admin_headers, json={
            "id": UUID1, "name": "web-server", "disk_format": "vmdk", "min_disk": 40, "min_ram": 1024,
            "protected": True, "tags": ["web", "team=ops"], "owner_specified.openstack.md5": "",
            "__os_version": "Ubuntu 14.04 server 64bit", "__description": "front end", "purpose": "demo"})
        assert r.status_code == 201, r.text
        assert r.headers["Location"].endswith(f"/v2/images/{UUID1}")
        image = r.json()
        assert image["id"] == UUID1 and image["status"] == "queued" and image["visibility"] == "private"
        assert image["container_format"] == "bare" and image["disk_format"] == "vmdk"
        assert image["min_disk"] == 40 and image["min_ram"] == 1024 and image["protected"] is True
        assert sorted(image["tags"]) == ["team.ops", "web"]
        assert image["size"] is None and image["checksum"] is None and image["virtual_size"] is None
        assert image["owner"] == project_of(client, admin_headers)
        assert image["purpose"] == "demo" and image["owner_specified.openstack.md5"] == ""
        assert image["__os_version"] == "Ubuntu 14.04 server 64bit" and image["__platform"] == "Ubuntu"
        assert image["__os_type"] == "Linux" and image["__os_bit"] == "64"
        assert image["__imagetype"] == "private" and image["__description"] == "front end"
        assert image["self"] == f"/v2/images/{UUID1}" and image["file"] == f"/v2/images/{UUID1}/file"
        assert "deleted" not in image
        assert client.get(f"/v2/images/{UUID1}", headers=admin_headers).json() == image

    def test_defaults(self, client: TestClient, admin_headers: dict[str, str]) -> None:
        image = create(client, admin_headers)
        assert image["name"] == "" and image["disk_format"] is None and image["container_format"] == "bare"
        assert image["min_disk"] == 0 and image["protected"] is False and image["tags"] == []
        assert image["__os_version"] == "Other Linux(64 bit)" and image["__platform"] == "Other"
        assert image["architecture"] == "x86" and image["hw_firmware_type"] == "bios"
        # Arm images boot UEFI: the default follows the architecture.
        assert create(client, admin_headers, architecture="arm")["hw_firmware_type"] == "uefi"

    REFUSED: list[tuple[dict[str, Any], int, str]] = [
        ({"status": "active"}, 403, "IMG.0105"),
        ({"size": 5}, 403, "IMG.0105"),
        ({"checksum": "0" * 32}, 403, "IMG.0105"),
        ({"created_at": "2020-01-01T00:00:00Z"}, 403, "IMG.0105"),
        ({"self": "/v2/images/x"}, 403, "IMG.0105"),
        ({"file": "/x"}, 403, "IMG.0105"),
        ({"schema": "/x"}, 403, "IMG.0105"),
        ({"deleted": True}, 403, "IMG.0105"),
        ({"location": "file:///etc/passwd"}, 403, "IMG.0105"),
        ({"__imagetype": "gold"}, 403, "IMG.0105"),
        ({"__image_size": "1"}, 403, "IMG.0105"),
        ({"os_glance_import_task": "x"}, 403, "IMG.0105"),
        # owner and visibility public: the operator's alone (test_operators.py).
        ({"visibility": "community"}, 400, "IMG.0001"),
        ({"name": "bad/name"}, 400, "IMG.0003"),
        ({"name": 5}, 400, "IMG.0003"),
        ({"name": "n" * 129}, 400, "IMG.0002"),
        ({"min_disk": "40"}, 400, "IMG.0055"),
        ({"min_disk": 2000}, 400, "IMG.0055"),
        ({"min_ram": -1}, 400, "IMG.0055"),
        ({"protected": "yes"}, 400, "IMG.0001"),
        ({"disk_format": "zvhd"}, 400, "IMG.0072"),
        ({"disk_format": "vmdk2"}, 400, "IMG.0072"),
        ({"container_format": "tar"}, 400, "IMG.0072"),
        ({"tags": "web"}, 400, "IMG.0115"),
        ({"tags": ["bad tag"]}, 400, "IMG.0115"),
        ({"tags": [f"t{i}" for i in range(11)]}, 400, "IMG.0116"),
        ({"purpose": 5}, 400, "IMG.0001"),
        ({"purpose": "x" * 256}, 400, "IMG.0001"),
        ({"Purpose": "x"}, 400, "IMG.0001"),
        ({"__os_version": "Plan 9"}, 400, "IMG.0056"),
        ({"hw_firmware_type": "coreboot"}, 400, "IMG.0141"),
        ({"id": "not-a-uuid"}, 400, "IMG.0066"),
    ]

    def test_refused_attributes(self, client: TestClient, admin_headers: dict[str, str]) -> None:
        for body, status, code in self.REFUSED:
            r = client.post("/v2/images", json={"name": "img", **body}, headers=admin_headers)
            assert (r.status_code, error_code(r)) == (status, code), (body, r.text)
        assert client.get("/v2/images", headers=admin_headers).json()["images"] == []

    def test_malformed_body(self, client: TestClient, admin_headers: dict[str, str]) -> None:
        for raw in (b"[]", b"{", b"", b'"name"', b"\xff"):
            r = client.post("/v2/images", content=raw, headers={**admin_headers, "Content-Type": "application/json"})
            assert r.status_code == 400, (raw, r.text)

    def test_a_trailing_newline_is_refused(self, client: TestClient, admin_headers: dict[str, str]) -> None:
        # The checks' regexes ended in "$", which also matches before a final newline: such a name, id, custom
        # property name or tag was stored with its newline, which the declared patterns (and Glance) refuse.
        for body in ({"name": "img\n"}, {"id": UUID1 + "\n"}, {"foo\n": "x"}, {"tags": ["t\n"]},
                     {"tags": ["k.v\n"]}):
            r = client.post("/v2/images", json=body, headers=admin_headers)
            assert r.status_code == 400, (body, r.text)
        image = create(client, admin_headers, name="img")
        assert client.put(f"/v2/images/{image['id']}/tags/t%0A", headers=admin_headers).status_code == 400
        assert client.get(f"/v2/images/{image['id']}", headers=admin_headers).json()["tags"] == []
        assert [i["id"] for i in client.get("/v2/images", headers=admin_headers).json()["images"]] == [image["id"]]

    def test_max_ram_is_a_string_in_both_views(self, client: TestClient, admin_headers: dict[str, str]) -> None:
        # Stored as a number, it showed as one in GET /v2/cloudimages, where IMS and the document type it a string.
        image = create(client, admin_headers, name="img", max_ram="2048")
        assert image["max_ram"] == "2048"
        (shown,) = client.get(f"/v2/cloudimages?id={image['id']}", headers=admin_headers).json()["images"]
        assert shown["max_ram"] == "2048"

    def test_duplicate_id_is_409(self, client: TestClient, admin_headers: dict[str, str]) -> None:
        create(client, admin_headers, id=UUID1)
        r = client.post("/v2/images", json={"id": UUID1}, headers=admin_headers)
        assert r.status_code == 409 and error_code(r) == "IMG.0035"

    def test_quota(self, client: TestClient, admin_headers: dict[str, str], runtime: Runtime) -> None:
        runtime.settings.image_quota = 1
        create(client, admin_headers, name="one")
        r = client.post("/v2/images", json={"name": "two"}, headers=admin_headers)
        assert r.status_code == 400 and error_code(r) == "IMG.0015"

    def test_auth(self, client: TestClient, runtime: Runtime) -> None:
        assert client.post("/v2/images", json={}).status_code == 401
        # Who calls is checked before what is sent.
        assert client.post("/v2/images", content=b"{", headers={"Content-Type": "application/json"}).status_code \
            == 401
        add_user(runtime.db, name="viewer", role="readonly")
        viewer = {"X-Auth-Token": login(client, "viewer", "User-Pass-1234")}
        r = client.post("/v2/images", json={"name": "x"}, headers=viewer)
        assert r.status_code == 403 and error_code(r) == "IMG.0026"


# ---------------------------------------------------------------- show


class TestShow:
    def test_tenancy(self, client: TestClient, admin_headers: dict[str, str], runtime: Runtime) -> None:
        image = create(client, admin_headers, name="mine")
        stranger = other_account(client, runtime)
        assert client.get(f"/v2/images/{image['id']}").status_code == 401
        r = client.get(f"/v2/images/{image['id']}", headers=stranger)
        assert r.status_code == 404 and error_code(r) == "IMG.0144"
        # Shared with the stranger's project: visible while pending (it was offered) and once accepted.
        share(runtime, image["id"], project_of(client, stranger), status="pending")
        seen = client.get(f"/v2/images/{image['id']}", headers=stranger).json()
        assert seen["name"] == "mine" and seen["visibility"] == "shared"
        assert client.get(f"/v2/images/{UUID1}", headers=admin_headers).status_code == 404


# ---------------------------------------------------------------- update


class TestUpdate:
    def test_core_custom_and_ims_attributes(self, client: TestClient, admin_headers: dict[str, str],
                                            clock: ManualClock) -> None:
        image = create(client, admin_headers, name="before", disk_format="qcow2", purpose="old", tags=["a"])
        clock.advance(60)
        r = patch(client, admin_headers, image["id"], [
            {"op": "replace", "path": "/name", "value": "after"},
            {"op": "add", "path": "/team", "value": "ops"},
            {"op": "replace", "path": "/purpose", "value": "new"},
            {"op": "add", "path": "/min_disk", "value": 20},
            {"op": "replace", "path": "/min_ram", "value": 512},
            {"op": "replace", "path": "/protected", "value": True},
            {"op": "replace", "path": "/tags", "value": ["b", "c"]},
            {"op": "replace", "path": "/visibility", "value": "shared"},
            {"op": "replace", "path": "/disk_format", "value": "vmdk"},
            {"op": "add", "path": "/__description", "value": "described"},
            {"op": "replace", "path": "/__os_version", "value": "Windows 10 64bit"},
        ])
        assert r.status_code == 200, r.text
        got = r.json()
        assert got["name"] == "after" and got["team"] == "ops" and got["purpose"] == "new"
        assert got["min_disk"] == 20 and got["min_ram"] == 512 and got["protected"] is True
        assert got["tags"] == ["b", "c"] and got["visibility"] == "shared" and got["disk_format"] == "vmdk"
        assert got["__description"] == "described"
        assert got["__os_version"] == "Windows 10 64bit" and got["__os_type"] == "Windows"
        assert got["updated_at"] != image["updated_at"] and got["created_at"] == image["created_at"]
        assert client.get(f"/v2/images/{image['id']}", headers=admin_headers).json() == got
        r = patch(client, admin_headers, image["id"], [{"op": "remove", "path": "/team"}])
        assert r.status_code == 200 and "team" not in r.json()

    def test_v20_media_type(self, client: TestClient, admin_headers: dict[str, str]) -> None:
        image = create(client, admin_headers, name="before")
        r = patch(client, admin_headers, image["id"], [{"replace": "/name", "value": "test01"}], PATCH_V20)
        assert r.status_code == 200 and r.json()["name"] == "test01"

    def test_other_media_types_are_415(self, client: TestClient, admin_headers: dict[str, str]) -> None:
        image = create(client, admin_headers, name="n")
        for media_type in ("application/json", "application/json-patch+json", "text/plain"):
            r = patch(client, admin_headers, image["id"], [{"op": "replace", "path": "/name", "value": "x"}],
                      media_type)
            assert r.status_code == 415
            assert "application/openstack-images-v2.1-json-patch" in r.headers["Accept-Patch"]

    READ_ONLY = ["/id", "/status", "/owner", "/checksum", "/size", "/virtual_size", "/os_hash_value",
                 "/created_at", "/updated_at", "/file", "/self", "/schema", "/locations", "/deleted", "/location"]
    SYSTEM = ["/__imagetype", "/__image_size", "/__data_origin", "/__isregistered", "/__platform"]

    def test_read_only_attributes_are_403(self, client: TestClient, admin_headers: dict[str, str]) -> None:
        image = create(client, admin_headers, name="n")
        for path in self.READ_ONLY + self.SYSTEM:
            for op in ("replace", "add", "remove"):
                if op == "remove" and path in self.SYSTEM:
                    continue
                body: dict[str, Any] = {"op": op, "path": path}
                if op != "remove":
                    body["value"] = "x"
                r = patch(client, admin_headers, image["id"], [body])
                assert (r.status_code, error_code(r)) == (403, "IMG.0105"), (op, path, r.text)
        assert client.get(f"/v2/images/{image['id']}", headers=admin_headers).json() == image

    def test_removing_what_every_image_has_is_ignored(self, client: TestClient,
                                                      admin_headers: dict[str, str]) -> None:
        # What openstacksdk's update_image(img, name=…, key=…) sends: a remove of every property it was not given.
        image = create(client, admin_headers, name="n", purpose="p", __description="kept")
        ops = [{"op": "remove", "path": f"/{k}"} for k in image if k.startswith("__")]
        ops += [{"op": "remove", "path": p} for p in ("/virtual_env_type", "/hw_firmware_type", "/architecture",
                                                      "/enterprise_project_id", "/purpose", "/__data_origin")]
        ops += [{"op": "replace", "path": "/name", "value": "renamed"}, {"op": "add", "path": "/k", "value": "v"}]
        r = patch(client, admin_headers, image["id"], ops)
        assert r.status_code == 200, r.text
        got = r.json()
        assert got["name"] == "renamed" and got["k"] == "v" and "purpose" not in got
        assert {k: v for k, v in got.items() if k.startswith("__")} == \
            {k: v for k, v in image.items() if k.startswith("__")}
        assert got["virtual_env_type"] == "FusionCompute" and got["hw_firmware_type"] == "bios"

    REFUSED: list[tuple[Any, int, str]] = [
        ([{"op": "remove", "path": "/name"}], 403, "IMG.0105"),
        ([{"op": "remove", "path": "/tags"}], 403, "IMG.0105"),
        ([{"op": "replace", "path": "/missing", "value": "x"}], 409, "IMG.0035"),
        ([{"op": "remove", "path": "/missing"}], 409, "IMG.0035"),
        # visibility public: the operator's alone (test_operators.py).
        ([{"op": "replace", "path": "/visibility", "value": "community"}], 400, "IMG.0001"),
        ([{"op": "replace", "path": "/min_disk", "value": "20"}], 400, "IMG.0055"),
        ([{"op": "replace", "path": "/min_ram", "value": 4096}, {"op": "add", "path": "/max_ram", "value": "1024"}],
         400, "IMG.0055"),
        ([{"op": "replace", "path": "/protected", "value": "true"}], 400, "IMG.0001"),
        ([{"op": "replace", "path": "/name", "value": "a" * 129}], 400, "IMG.0002"),
        ([{"op": "replace", "path": "/tags", "value": ["ok", "not ok"]}], 400, "IMG.0115"),
        ([{"op": "add", "path": "/custom", "value": {"nested": 1}}], 400, "IMG.0001"),
        ([{"op": "move", "path": "/name", "value": "x"}], 400, "IMG.0001"),
        ([{"path": "/name", "value": "x"}], 400, "IMG.0001"),
        ([{"op": "replace", "value": "x"}], 400, "IMG.0001"),
        ([{"op": "replace", "path": "/name"}], 400, "IMG.0001"),
        ([{"op": "replace", "path": "name", "value": "x"}], 400, "IMG.0001"),
        ([{"op": "replace", "path": "/tags/0", "value": "x"}], 400, "IMG.0001"),
        ([{"op": "replace", "path": "/bad~2", "value": "x"}], 400, "IMG.0001"),
        # "~1" is "/": a valid pointer to a name no attribute may have.
        ([{"op": "add", "path": "/a~1b", "value": "x"}], 400, "IMG.0001"),
        (["replace"], 400, "IMG.0001"),
        ({"op": "replace", "path": "/name", "value": "x"}, 400, "IMG.0001"),
    ]

    def test_refused_operations(self, client: TestClient, admin_headers: dict[str, str]) -> None:
        image = create(client, admin_headers, name="keep")
        for ops, status, code in self.REFUSED:
            r = patch(client, admin_headers, image["id"], ops)
            assert (r.status_code, error_code(r)) == (status, code), (ops, r.text)
        assert client.get(f"/v2/images/{image['id']}", headers=admin_headers).json() == image

    def test_all_or_nothing(self, client: TestClient, admin_headers: dict[str, str]) -> None:
        image = create(client, admin_headers, name="keep")
        r = patch(client, admin_headers, image["id"], [{"op": "replace", "path": "/name", "value": "changed"},
                                                        {"op": "remove", "path": "/nope"}])
        assert r.status_code == 409
        assert client.get(f"/v2/images/{image['id']}", headers=admin_headers).json()["name"] == "keep"

    def test_formats_only_while_queued(self, client: TestClient, admin_headers: dict[str, str],
                                       runtime: Runtime) -> None:
        image = create(client, admin_headers, name="n", disk_format="qcow2")
        set_columns(runtime, image["id"], status="active")
        r = patch(client, admin_headers, image["id"], [{"op": "replace", "path": "/disk_format", "value": "raw"}])
        assert r.status_code == 403 and "queued" in r.json()["error"]["message"]
        r = patch(client, admin_headers, image["id"], [{"op": "replace", "path": "/name", "value": "renamed"}])
        assert r.status_code == 200

    def test_private_needs_no_members(self, client: TestClient, admin_headers: dict[str, str],
                                      runtime: Runtime) -> None:
        image = create(client, admin_headers, name="n")
        share(runtime, image["id"], "f" * 32)
        r = patch(client, admin_headers, image["id"], [{"op": "replace", "path": "/visibility", "value": "private"}])
        assert r.status_code == 409

    def test_who_may_update(self, client: TestClient, admin_headers: dict[str, str], runtime: Runtime) -> None:
        image = create(client, admin_headers, name="n")
        ops = [{"op": "replace", "path": "/name", "value": "hijacked"}]
        assert client.patch(f"/v2/images/{image['id']}", json=ops, headers={"Content-Type": PATCH}).status_code == 401
        assert client.patch(f"/v2/images/{image['id']}", json=ops).status_code == 401
        stranger = other_account(client, runtime)
        r = patch(client, stranger, image["id"], ops)
        assert r.status_code == 404
        share(runtime, image["id"], project_of(client, stranger))
        r = patch(client, stranger, image["id"], ops)
        assert r.status_code == 403 and error_code(r) == "IMG.0047"
        add_user(runtime.db, name="viewer", role="readonly")
        viewer = {"X-Auth-Token": login(client, "viewer", "User-Pass-1234")}
        assert patch(client, viewer, image["id"], ops).status_code == 403
        assert client.get(f"/v2/images/{image['id']}", headers=admin_headers).json()["name"] == "n"


# ---------------------------------------------------------------- delete


class TestDelete:
    def test_delete(self, client: TestClient, admin_headers: dict[str, str]) -> None:
        image = create(client, admin_headers, name="n", tags=["t"])
        assert client.delete(f"/v2/images/{image['id']}").status_code == 401
        r = client.delete(f"/v2/images/{image['id']}", headers=admin_headers)
        assert r.status_code == 204 and r.content == b""
        assert client.get(f"/v2/images/{image['id']}", headers=admin_headers).status_code == 404
        assert client.delete(f"/v2/images/{image['id']}", headers=admin_headers).status_code == 404

    def test_protected_is_refused(self, client: TestClient, admin_headers: dict[str, str]) -> None:
        image = create(client, admin_headers, name="n", protected=True)
        r = client.delete(f"/v2/images/{image['id']}", headers=admin_headers)
        assert r.status_code == 403 and error_code(r) == "IMG.0028"
        patch(client, admin_headers, image["id"], [{"op": "replace", "path": "/protected", "value": False}])
        assert client.delete(f"/v2/images/{image['id']}", headers=admin_headers).status_code == 204

    def test_only_the_owner_deletes(self, client: TestClient, admin_headers: dict[str, str],
                                    runtime: Runtime) -> None:
        image = create(client, admin_headers, name="n")
        stranger = other_account(client, runtime)
        assert client.delete(f"/v2/images/{image['id']}", headers=stranger).status_code == 404
        share(runtime, image["id"], project_of(client, stranger))
        r = client.delete(f"/v2/images/{image['id']}", headers=stranger)
        assert r.status_code == 403 and error_code(r) == "IMG.0092"
        set_columns(runtime, image["id"], visibility="public")
        r = client.delete(f"/v2/images/{image['id']}", headers=stranger)
        assert r.status_code == 403 and error_code(r) == "IMG.0094"
        assert client.get(f"/v2/images/{image['id']}", headers=admin_headers).status_code == 200

    def test_hiding_an_image(self, client: TestClient, admin_headers: dict[str, str]) -> None:
        image = create(client, admin_headers, name="to-hide")
        got = patch(client, admin_headers, image["id"], [{"op": "replace", "path": "/os_hidden", "value": True}])
        assert got.status_code == 200 and got.json()["os_hidden"] is True
        assert _ids(client, admin_headers) == [] and _ids(client, admin_headers, os_hidden="true") == [image["id"]]
        # Still readable by id, as Glance; hiding only keeps it out of default lists.
        assert client.get(f"/v2/images/{image['id']}", headers=admin_headers).status_code == 200
        r = patch(client, admin_headers, image["id"], [{"op": "replace", "path": "/os_hidden", "value": "maybe"}])
        assert r.status_code == 400
        assert patch(client, admin_headers, image["id"], [{"op": "remove", "path": "/os_hidden"}]).status_code == 403

    def test_collection_methods_and_trailing_slash(self, client: TestClient, admin_headers: dict[str, str]) -> None:
        # As Glance: the collection takes GET and POST only, and a trailing slash is not the collection.
        r = client.delete("/v2/images", headers=admin_headers)
        assert r.status_code == 405 and r.headers["allow"] == "GET, POST"
        assert client.get("/v2/images/", headers=admin_headers, follow_redirects=False).status_code == 404
        assert client.delete("/v2/images/", headers=admin_headers, follow_redirects=False).status_code == 404


# ---------------------------------------------------------------- list


def _ids(client: TestClient, headers: dict[str, str], **params: Any) -> list[str]:
    r = client.get("/v2/images", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return [i["id"] for i in r.json()["images"]]


def _all_pages(client: TestClient, headers: dict[str, str], url: str) -> tuple[list[dict[str, Any]], int]:
    images: list[dict[str, Any]] = []
    pages = 0
    next_url: str | None = url
    while next_url:
        body = client.get(next_url, headers=headers).json()
        pages += 1
        images += body["images"]
        next_url = body.get("next")
        assert pages < 50
    return images, pages


class TestList:
    def test_auth_and_shape(self, client: TestClient, admin_headers: dict[str, str], runtime: Runtime) -> None:
        assert client.get("/v2/images").status_code == 401
        image = create(client, admin_headers, name="n")
        body = client.get("/v2/images", headers=admin_headers).json()
        assert body == {"images": [body["images"][0]], "first": "/v2/images", "schema": "/v2/schemas/images"}
        assert body["images"][0] == image
        assert client.get("/v2/images", headers=other_account(client, runtime)).json()["images"] == []

    def test_pages_cover_everything_once(self, client: TestClient, admin_headers: dict[str, str]) -> None:
        # One clock tick for all: every created_at is equal, so only the id orders them.
        made = {create(client, admin_headers, name=f"img-{i % 3}")["id"] for i in range(28)}
        first = client.get("/v2/images", headers=admin_headers).json()
        assert len(first["images"]) == 25 and first["next"].startswith("/v2/images?")
        images, pages = _all_pages(client, admin_headers, "/v2/images?limit=4&name=in:img-0,img-1,img-2")
        ids = [i["id"] for i in images]
        assert len(ids) == len(set(ids)) == 28 and set(ids) == made and pages == 8
        # Sorted by name, ties by id: the same order page by page as in one page.
        images, _ = _all_pages(client, admin_headers, "/v2/images?limit=3&sort=name:asc")
        one = client.get("/v2/images?limit=100&sort=name:asc", headers=admin_headers).json()["images"]
        assert [i["id"] for i in images] == [i["id"] for i in one]
        assert [i["name"] for i in one] == sorted(i["name"] for i in one)
        assert "next" not in client.get("/v2/images?limit=100", headers=admin_headers).json()

    def test_next_and_first_links_keep_the_filters(self, client: TestClient, admin_headers: dict[str, str]) -> None:
        for i in range(3):
            create(client, admin_headers, name=f"n{i}", tags=["keep"])
        body = client.get("/v2/images?tag=keep&limit=2&sort_key=name&sort_dir=asc", headers=admin_headers).json()
        assert body["first"] == "/v2/images?tag=keep&limit=2&sort_key=name&sort_dir=asc"
        assert [i["name"] for i in body["images"]] == ["n0", "n1"]
        nxt = body["next"]
        assert "tag=keep" in nxt and "sort_key=name" in nxt and f"marker={body['images'][1]['id']}" in nxt
        assert [i["name"] for i in client.get(nxt, headers=admin_headers).json()["images"]] == ["n2"]

    def test_sorting(self, client: TestClient, admin_headers: dict[str, str], clock: ManualClock) -> None:
        made = []
        for name in ("b", "a", "b", "c"):
            clock.advance(1)
            made.append(create(client, admin_headers, name=name))
        by_created = [m["id"] for m in made]
        assert _ids(client, admin_headers) == by_created[::-1]
        assert _ids(client, admin_headers, sort_key="created_at", sort_dir="asc") == by_created
        expected = [m["id"] for m in sorted(made, key=lambda m: (m["name"], m["created_at"]))]
        assert _ids(client, admin_headers, sort="name:asc,created_at:asc") == expected
        r = client.get("/v2/images?sort_key=name&sort_key=created_at&sort_dir=asc&sort_dir=asc", headers=admin_headers)
        assert [i["id"] for i in r.json()["images"]] == expected
        mixed = [m["id"] for m in sorted(made, key=lambda m: (m["name"], -by_created.index(m["id"])))]
        assert _ids(client, admin_headers, sort="name:asc,created_at:desc") == mixed
        # Paging through a mixed-direction sort gives the same order.
        images, _ = _all_pages(client, admin_headers, "/v2/images?limit=1&sort=name:asc,created_at:desc")
        assert [i["id"] for i in images] == mixed

    BAD_QUERIES = ["limit=x", "limit=-1", "sort_key=owner", "sort_dir=up", "sort=name:up",
                                       "sort=name&sort_key=name", "sort_key=name&sort_key=id&sort_dir=asc&"
                                       "sort_dir=asc&sort_dir=desc", "visibility=everyone", "member_status=maybe",
                                       "protected=yes", "size_min=big", "created_at=2020-01-01",
                                       "changes-since=2020-01-01T00:00:00Z", f"marker={UUID1}", "min_disk=x",
                                       "__imagetype=weird", "name=gt:x", "status=lte:active", "id=neq:x"]

    def test_bad_parameters_are_400(self, client: TestClient, admin_headers: dict[str, str]) -> None:
        for query in self.BAD_QUERIES:
            r = client.get(f"/v2/images?{query}", headers=admin_headers)
            assert r.status_code == 400, (query, r.text)

    def test_limit_bounds(self, client: TestClient, admin_headers: dict[str, str]) -> None:
        create(client, admin_headers, name="n")
        assert client.get("/v2/images?limit=0", headers=admin_headers).json()["images"] == []
        assert len(client.get("/v2/images?limit=5000", headers=admin_headers).json()["images"]) == 1

    def test_filters(self, client: TestClient, admin_headers: dict[str, str], runtime: Runtime,
                     clock: ManualClock) -> None:
        clock.now = clock.now.replace(microsecond=0)
        start = clock()
        a = create(client, admin_headers, name="alpha", disk_format="qcow2", tags=["web", "prod"], purpose="x",
                   protected=True)
        clock.advance(3600)
        b = create(client, admin_headers, name="beta", disk_format="raw", tags=["web", "env=test"],
                   visibility="shared")
        clock.advance(3600)
        c = create(client, admin_headers, name="gamma", disk_format="vmdk", purpose="y")
        clock.advance(3600)
        hidden = create(client, admin_headers, name="hidden-one", os_hidden=True)
        assert hidden["os_hidden"] is True and c["os_hidden"] is False
        set_columns(runtime, a["id"], status="active", size=100)
        set_columns(runtime, b["id"], status="active", size=5000)
        project = project_of(client, admin_headers)
        h = admin_headers
        def ts(t: dt.datetime) -> str:
            return t.strftime("%Y-%m-%dT%H:%M:%SZ")
        cases: list[tuple[dict[str, Any], list[str]]] = [
            ({"name": "beta"}, [b["id"]]),
            ({"name": "in:alpha,gamma"}, [c["id"], a["id"]]),
            ({"id": f"in:{a['id']},{b['id']}"}, [b["id"], a["id"]]),
            ({"id": c["id"]}, [c["id"]]),
            ({"status": "queued"}, [c["id"]]),
            ({"status": "in:active,killed"}, [b["id"], a["id"]]),
            ({"visibility": "shared"}, [b["id"]]),
            ({"visibility": "private"}, [c["id"], a["id"]]),
            ({"visibility": "public"}, []),
            ({"visibility": "all"}, [c["id"], b["id"], a["id"]]),
            ({"owner": project}, [c["id"], b["id"], a["id"]]),
            ({"owner": "0" * 32}, []),
            ({"disk_format": "raw"}, [b["id"]]),
            ({"container_format": "bare"}, [c["id"], b["id"], a["id"]]),
            ({"size_min": "101"}, [b["id"]]),
            ({"size_max": "100"}, [a["id"]]),
            ({"size_min": "50", "size_max": "6000"}, [b["id"], a["id"]]),
            ({"created_at": f"gt:{ts(start)}"}, [c["id"], b["id"]]),
            ({"created_at": f"lte:{ts(start)}"}, [a["id"]]),
            ({"created_at": f"neq:{ts(start)}"}, [c["id"], b["id"]]),
            ({"updated_at": f"lt:{ts(start + dt.timedelta(hours=2))}"}, [b["id"], a["id"]]),
            ({"protected": "true"}, [a["id"]]),
            ({"protected": "false"}, [c["id"], b["id"]]),
            ({"purpose": "y"}, [c["id"]]),
            ({"__imagetype": "private"}, [c["id"], b["id"], a["id"]]),
            ({"__platform": "Other"}, [c["id"], b["id"], a["id"]]),
            # Hidden images are listed only when asked for; the other filters apply to them as well.
            ({"os_hidden": "true"}, [hidden["id"]]),
            ({"os_hidden": "True", "name": "in:hidden-one,alpha"}, [hidden["id"]]),
            ({"os_hidden": "false"}, [c["id"], b["id"], a["id"]]),
            # A quoted value keeps its comma: "alpha,beta" is one name (which no image has).
            ({"name": 'in:"alpha,beta",gamma'}, [c["id"]]),
            ({"name": "eq:beta"}, [b["id"]]),
        ]
        for params, expected in cases:
            assert _ids(client, h, **params) == expected, params
        # Tags: repeatable, all must be present; key=value finds the IMS key.value tag.
        assert client.get("/v2/images?tag=web", headers=h).json()["images"][0]["id"] == b["id"]
        assert [i["id"] for i in client.get("/v2/images?tag=web&tag=prod", headers=h).json()["images"]] == [a["id"]]
        assert [i["id"] for i in client.get("/v2/images?tag=env=test", headers=h).json()["images"]] == [b["id"]]
        assert client.get("/v2/images?tag=web&tag=nothing", headers=h).json()["images"] == []

    def test_member_status(self, client: TestClient, admin_headers: dict[str, str], runtime: Runtime,
                           clock: ManualClock) -> None:
        stranger = other_account(client, runtime)
        theirs = create(client, stranger, name="offered")
        clock.advance(1)
        mine = create(client, admin_headers, name="mine")
        share(runtime, theirs["id"], project_of(client, admin_headers), status="pending")
        assert _ids(client, admin_headers) == [mine["id"]]
        assert _ids(client, admin_headers, member_status="pending") == [mine["id"], theirs["id"]]
        assert _ids(client, admin_headers, member_status="pending", visibility="shared") == [theirs["id"]]
        assert _ids(client, admin_headers, member_status="all") == [mine["id"], theirs["id"]]
        assert _ids(client, admin_headers, member_status="rejected") == [mine["id"]]
        with runtime.db.transaction() as s:
            s.execute(update(ImageMember).values(status="accepted"))
        assert _ids(client, admin_headers) == [mine["id"], theirs["id"]]
        assert _ids(client, admin_headers, __imagetype="shared") == [theirs["id"]]
