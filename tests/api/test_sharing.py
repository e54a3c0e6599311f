"""Image sharing through HTTP: IMS batch member jobs, IMS member queries, native members, and visibility."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from openims.catalog import images, members
from openims.db.models import Image, ImageMember
from openims.runtime import Runtime
from openims.worker.runner import Worker
from tests.api.test_images_api import upload
from tests.api.test_tags import new_images, project_of
from tests.conftest import login, new_tenant
from tests.support.images import make_image
from tests.support.tenants import add_user

H = dict[str, str]
NO_SUCH_PROJECT = "0" * 32


@pytest.fixture
def source(client: TestClient, admin_headers: H, tmp_path: Path) -> None:
    upload(client, admin_headers, "bkt", "disk.qcow2", make_image(tmp_path / "src", "qcow2"))


@pytest.fixture
def owner(client: TestClient, admin_headers: H) -> str:
    return project_of(client, admin_headers)


@pytest.fixture
def bob(client: TestClient, runtime: Runtime) -> H:
    """A user of another account: the one images get shared with."""
    return new_tenant(client, runtime, "bob", domain="partner", project="local-1_partner")


@pytest.fixture
def bob_pid(client: TestClient, bob: H) -> str:
    return project_of(client, bob)


@pytest.fixture
def eve(client: TestClient, runtime: Runtime) -> H:
    """A third account, never shared with."""
    return new_tenant(client, runtime, "eve", domain="other", project="local-1_other")


@pytest.fixture
def image(client: TestClient, admin_headers: H, runtime: Runtime, source: None) -> str:
    return new_images(client, admin_headers, runtime, "to-share")[0]


def error_code(r: Any) -> str:
    return str(r.json()["error"]["code"])


def run_job(client: TestClient, headers: H, runtime: Runtime, r: Any) -> dict[str, Any]:
    """The job a batch request answered with, after the worker ran it."""
    assert r.status_code == 200, r.text
    job_id = r.json()["job_id"]
    Worker(runtime).run_until_idle()
    pid = project_of(client, headers)
    job: dict[str, Any] = client.get(f"/v1/{pid}/jobs/{job_id}", headers=headers).json()
    return job


def share(client: TestClient, headers: H, images: list[str], projects: list[str]) -> Any:
    return client.post("/v1/cloudimages/members", json={"images": images, "projects": projects}, headers=headers)


def unshare(client: TestClient, headers: H, images: list[str], projects: list[str]) -> Any:
    return client.request("DELETE", "/v1/cloudimages/members", json={"images": images, "projects": projects},
                          headers=headers)


def answer(client: TestClient, headers: H, images: list[str], project_id: str, status: str) -> Any:
    return client.put("/v1/cloudimages/members", json={"images": images, "project_id": project_id,
                                                       "status": status}, headers=headers)


def listed(client: TestClient, headers: H, **params: str) -> list[str]:
    r = client.get("/v2/cloudimages", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return [i["id"] for i in r.json()["images"]]


def native_listed(client: TestClient, headers: H, **params: str) -> list[str]:
    r = client.get("/v2/images", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return [i["id"] for i in r.json()["images"]]


def set_image(runtime: Runtime, image_id: str, **values: Any) -> None:
    with runtime.db.transaction() as s:
        row = s.get(Image, image_id)
        assert row is not None
        for k, v in values.items():
            setattr(row, k, v)


class TestBatchJobs:
    def test_share_accept_reject_unshare(self, client: TestClient, admin_headers: H, runtime: Runtime,
                                         image: str, owner: str, bob: H, bob_pid: str, eve: H) -> None:
        # Before: bob sees nothing.
        assert client.get(f"/v2/images/{image}", headers=bob).status_code == 404

        job = run_job(client, admin_headers, runtime, share(client, admin_headers, [image], [bob_pid]))
        assert job["job_type"] == "imsAddImageMembersJob" and job["status"] == "SUCCESS", job
        assert job["entities"]["results"] == [{"image_id": image, "project_id": bob_pid, "status": "success"}]
        assert job["begin_time"] and job["end_time"] and job["error_code"] is None

        # Pending: not in bob's lists, but found through the member_status filter IMS documents; bob
        # may look at it before deciding (as a Glance member can).
        assert image not in listed(client, bob)
        assert client.get(f"/v2/images/{image}", headers=bob).json()["visibility"] == "shared"
        assert listed(client, bob, member_status="pending", visibility="shared", __imagetype="shared") == [image]
        assert listed(client, bob, member_status="accepted", visibility="shared", __imagetype="shared") == []
        assert native_listed(client, bob) == []
        assert native_listed(client, bob, member_status="pending") == [image]
        assert native_listed(client, bob, member_status="all") == [image]
        # The owner sees it as shared now.
        mine = client.get(f"/v2/images/{image}", headers=admin_headers).json()
        assert mine["visibility"] == "shared" and mine["__imagetype"] == "shared"
        assert listed(client, admin_headers, __imagetype="shared") == [image]
        assert listed(client, admin_headers, __imagetype="private") == []

        job = run_job(client, bob, runtime, answer(client, bob, [image], bob_pid, "accepted"))
        assert job["job_type"] == "imsUpdateImageMembersJob" and job["status"] == "SUCCESS", job
        assert job["entities"]["results"] == [{"image_id": image, "project_id": bob_pid, "status": "success"}]

        # Accepted: bob lists and reads it, shown as shared.
        assert listed(client, bob) == [image]
        assert listed(client, bob, __imagetype="shared") == [image]
        assert listed(client, bob, member_status="accepted", visibility="shared", __imagetype="shared") == [image]
        assert listed(client, bob, __imagetype="private") == []
        assert listed(client, bob, owner=owner) == [image] and listed(client, bob, owner=bob_pid) == []
        assert native_listed(client, bob) == [image]
        assert native_listed(client, bob, visibility="shared") == [image]
        assert native_listed(client, bob, member_status="pending") == []
        seen = client.get(f"/v2/images/{image}", headers=bob).json()
        assert seen["visibility"] == "shared" and seen["__imagetype"] == "shared" and seen["owner"] != bob_pid
        # Keyset pagination over a list holding the shared image still works.
        assert listed(client, bob, limit="1", marker=image) == []
        # A third account still sees nothing.
        assert client.get(f"/v2/images/{image}", headers=eve).status_code == 404
        assert listed(client, eve) == []

        # Rejected: hidden again; the rejected filter finds it; bob may change his mind.
        assert run_job(client, bob, runtime, answer(client, bob, [image], bob_pid, "rejected"))["status"] == "SUCCESS"
        assert listed(client, bob) == [] and native_listed(client, bob) == []
        assert listed(client, bob, member_status="rejected", visibility="shared", __imagetype="shared") == [image]
        assert native_listed(client, bob, member_status="rejected") == [image]
        assert run_job(client, bob, runtime, answer(client, bob, [image], bob_pid, "accepted"))["status"] == "SUCCESS"
        assert listed(client, bob) == [image]

        job = run_job(client, admin_headers, runtime, unshare(client, admin_headers, [image], [bob_pid]))
        assert job["job_type"] == "imsDelImageMembersJob" and job["status"] == "SUCCESS", job
        assert job["entities"]["results"] == []
        assert listed(client, bob) == []
        assert client.get(f"/v2/images/{image}", headers=bob).status_code == 404
        # No member left: private again.
        mine = client.get(f"/v2/images/{image}", headers=admin_headers).json()
        assert mine["visibility"] == "private" and mine["__imagetype"] == "private"

    def test_partial_failure_is_reported_per_item(self, client: TestClient, admin_headers: H, runtime: Runtime,
                                                  source: None, owner: str, bob: H, bob_pid: str) -> None:
        good, queued = new_images(client, admin_headers, runtime, "good", "queued")
        # An image whose data is not there (yet): not shareable.
        set_image(runtime, queued, status="queued")
        missing = "00000000-0000-0000-0000-000000000000"
        r = share(client, admin_headers, [good, missing, queued], [bob_pid, owner, NO_SUCH_PROJECT])
        job = run_job(client, admin_headers, runtime, r)
        assert job["status"] == "SUCCESS", job
        by_pair = {(x["image_id"], x["project_id"]): x for x in job["entities"]["results"]}
        assert len(by_pair) == 9
        assert by_pair[(good, bob_pid)]["status"] == "success"
        assert by_pair[(good, owner)]["status"] == "fail" and by_pair[(good, owner)]["error_code"] == "IMG.0076"
        assert by_pair[(good, NO_SUCH_PROJECT)]["error_code"] == "IMG.0108"
        assert {by_pair[(missing, p)]["error_code"] for p in (bob_pid, owner, NO_SUCH_PROJECT)} == {"IMG.0144"}
        assert {by_pair[(queued, p)]["error_code"] for p in (bob_pid, owner, NO_SUCH_PROJECT)} == {"IMG.0046"}
        assert all(x["fail_reason"] for x in job["entities"]["results"] if x["status"] == "fail")
        # What succeeded took effect.
        assert listed(client, bob, member_status="pending", __imagetype="shared") == [good]

        # Sharing again is idempotent; a batch where everything fails fails as a whole.
        again = run_job(client, admin_headers, runtime, share(client, admin_headers, [good], [bob_pid]))
        assert again["status"] == "SUCCESS"
        job = run_job(client, admin_headers, runtime, share(client, admin_headers, [missing], [bob_pid]))
        assert job["status"] == "FAIL" and job["error_code"] == "IMG.0144" and missing in job["fail_reason"]

        # Answering for an image never shared with you: that item fails, the other is accepted.
        job = run_job(client, bob, runtime, answer(client, bob, [good, missing], bob_pid, "accepted"))
        assert job["status"] == "SUCCESS"
        assert [(x["image_id"], x["status"]) for x in job["entities"]["results"]] == [
            (good, "success"), (missing, "fail")]
        assert listed(client, bob) == [good]

        # Removing a project that is no member: reported, the rest goes on.
        job = run_job(client, admin_headers, runtime, unshare(client, admin_headers, [good], [bob_pid, owner]))
        assert job["status"] == "SUCCESS"
        assert [(x["project_id"], x["status"], x["error_code"]) for x in job["entities"]["results"]] == [
            (owner, "fail", "IMG.0113")]
        assert listed(client, bob) == []

    def test_sharing_restrictions(self, client: TestClient, admin_headers: H, runtime: Runtime, source: None,
                                  bob: H, bob_pid: str, monkeypatch: pytest.MonkeyPatch) -> None:
        public, whole, encrypted, limited = new_images(client, admin_headers, runtime, "pub", "whole", "enc", "lim")
        set_image(runtime, public, visibility="public", image_type="gold")
        set_image(runtime, whole, properties={"__whole_image": "true"})
        set_image(runtime, encrypted, properties={"__system__cmkid": "kms-key-1"})
        job = run_job(client, admin_headers, runtime, share(client, admin_headers, [public, whole, encrypted],
                                                            [bob_pid]))
        assert job["status"] == "FAIL"
        assert [x["error_code"] for x in job["entities"]["results"]] == ["IMG.0089", "IMG.0135", "IMG.0098"]

        monkeypatch.setattr(members, "MAX_MEMBERS", 1)
        add_user(runtime.db, name="carol", role="te_admin", domain_name="third", project_name="local-1_third")
        carol = project_of(client, {"X-Auth-Token": login(client, "carol", "User-Pass-1234", domain="third",
                                                           project="local-1_third")})
        assert run_job(client, admin_headers, runtime, share(client, admin_headers, [limited], [bob_pid])
                       )["status"] == "SUCCESS"
        job = run_job(client, admin_headers, runtime, share(client, admin_headers, [limited], [carol]))
        assert job["status"] == "FAIL" and job["error_code"] == "IMG.0088"
        set_image(runtime, limited, visibility="shared")
        r = client.post(f"/v2/images/{limited}/members", json={"member": carol}, headers=admin_headers)
        assert r.status_code == 413 and error_code(r) == "IMG.0088"  # Glance's answer on the native route

    def test_member_cannot_reshare_or_answer_for_others(self, client: TestClient, admin_headers: H,
                                                        runtime: Runtime, image: str, owner: str, bob: H,
                                                        bob_pid: str, eve: H) -> None:
        run_job(client, admin_headers, runtime, share(client, admin_headers, [image], [bob_pid]))
        run_job(client, bob, runtime, answer(client, bob, [image], bob_pid, "accepted"))
        eve_pid = project_of(client, eve)
        job = run_job(client, bob, runtime, share(client, bob, [image], [eve_pid]))
        assert job["status"] == "FAIL" and job["error_code"] == "IMG.0047"
        job = run_job(client, bob, runtime, unshare(client, bob, [image], [bob_pid]))
        assert job["status"] == "FAIL" and job["error_code"] == "IMG.0047"
        assert client.get(f"/v2/images/{image}", headers=eve).status_code == 404
        # The owner cannot answer in the member's place, nor can anyone answer for another project.
        r = answer(client, admin_headers, [image], bob_pid, "rejected")
        assert r.status_code == 400 and error_code(r) == "IMG.0067"
        job = run_job(client, admin_headers, runtime, answer(client, admin_headers, [image], owner, "rejected"))
        assert job["status"] == "FAIL"
        assert listed(client, bob) == [image]

    def test_bad_requests(self, client: TestClient, admin_headers: H, owner: str) -> None:
        for r in (
            share(client, admin_headers, [], [owner]),
            share(client, admin_headers, ["x"], []),
            client.post("/v1/cloudimages/members", json={"images": ["x"]}, headers=admin_headers),
            client.post("/v1/cloudimages/members", json={"images": "x", "projects": ["y"]}, headers=admin_headers),
            share(client, admin_headers, [""], [owner]),
            share(client, admin_headers, ["x" * 65], [owner]),
            share(client, admin_headers, [f"i{n}" for n in range(101)], [owner]),
            unshare(client, admin_headers, [], []),
            answer(client, admin_headers, ["x"], owner, "maybe"),
            answer(client, admin_headers, ["x"], owner, "pending"),
            answer(client, admin_headers, [], owner, "accepted"),
            client.put("/v1/cloudimages/members", json={"images": ["x"], "status": "accepted"},
                       headers=admin_headers),
        ):
            assert r.status_code == 400 and error_code(r) == "IMG.0001", r.text

    def test_auth(self, client: TestClient, runtime: Runtime, owner: str) -> None:
        body = {"images": ["x"], "projects": ["y"]}
        assert client.post("/v1/cloudimages/members", json=body).status_code == 401
        assert client.request("DELETE", "/v1/cloudimages/members", json=body).status_code == 401
        assert client.put("/v1/cloudimages/members", json={**body, "project_id": "y", "status": "accepted"}
                          ).status_code == 401
        add_user(runtime.db, name="viewer", role="readonly")
        h = {"X-Auth-Token": login(client, "viewer", "User-Pass-1234")}
        r = client.post("/v1/cloudimages/members", json={"images": ["x"], "projects": ["y"]}, headers=h)
        assert r.status_code == 403 and error_code(r) == "IMG.0026"


class TestImsMemberQueries:
    def test_list_and_show(self, client: TestClient, admin_headers: H, runtime: Runtime, image: str, owner: str,
                           bob: H, bob_pid: str, eve: H) -> None:
        eve_pid = project_of(client, eve)
        run_job(client, admin_headers, runtime, share(client, admin_headers, [image], [bob_pid, eve_pid]))
        base = f"/v1/{owner}/cloudimages/{image}/members"
        body = client.get(base, headers=admin_headers).json()
        assert body["schema"] == "/v2/schemas/members"
        assert sorted(m["member_id"] for m in body["members"]) == sorted([bob_pid, eve_pid])
        first = body["members"][0]
        assert set(first) == {"status", "created_at", "updated_at", "image_id", "member_id", "schema",
                              "member_type"}
        assert first["status"] == "pending" and first["member_type"] == "project"
        assert first["schema"] == "/v2/schemas/member" and first["created_at"].endswith("Z")
        assert body["page_info"] == {"next_marker": None, "current_count": 2}
        page = client.get(base, params={"limit": 1}, headers=admin_headers).json()
        assert len(page["members"]) == 1 and page["page_info"]["next_marker"] == page["members"][0]["member_id"]
        rest = client.get(base, params={"limit": 1, "marker": page["page_info"]["next_marker"]},
                          headers=admin_headers).json()
        assert [m["member_id"] for m in page["members"] + rest["members"]] == [m["member_id"]
                                                                                for m in body["members"]]
        assert client.get(base, params={"limit": "x"}, headers=admin_headers).status_code == 400
        assert client.get(base, params={"marker": "nobody"}, headers=admin_headers).status_code == 400
        one = client.get(f"{base}/{bob_pid}", headers=admin_headers).json()
        assert one["member_id"] == bob_pid and one["image_id"] == image

        # A member sees only its own membership, even before accepting.
        mine = client.get(f"/v1/{bob_pid}/cloudimages/{image}/members", headers=bob).json()["members"]
        assert [m["member_id"] for m in mine] == [bob_pid]
        assert client.get(f"/v1/{bob_pid}/cloudimages/{image}/members/{eve_pid}", headers=bob).status_code == 404
        assert client.get(f"/v1/{bob_pid}/cloudimages/{image}/members/{bob_pid}", headers=bob).status_code == 200
        # Errors: unknown member, unknown image, wrong project in the path, no token.
        r = client.get(f"{base}/{NO_SUCH_PROJECT}", headers=admin_headers)
        assert r.status_code == 404
        r = client.get(f"/v1/{owner}/cloudimages/00000000-0000-0000-0000-000000000000/members",
                       headers=admin_headers)
        assert r.status_code == 404 and error_code(r) == "IMG.0144"
        assert client.get(base, headers=bob).status_code == 403
        assert client.get(base).status_code == 401


def make_shared(client: TestClient, headers: H, image_id: str) -> None:
    r = client.patch(f"/v2/images/{image_id}", json=[{"op": "replace", "path": "/visibility", "value": "shared"}],
                     headers={**headers, "Content-Type": "application/openstack-images-v2.1-json-patch"})
    assert r.status_code == 200, r.text


class TestNativeMembers:
    """Glance's rules (the sheet's §5); the IMS batch routes keep theirs (TestBatchJobs)."""

    def test_lifecycle(self, client: TestClient, admin_headers: H, runtime: Runtime, image: str, owner: str,
                       bob: H, bob_pid: str, eve: H) -> None:
        base = f"/v2/images/{image}/members"
        # Only an image whose visibility is shared has members.
        r = client.post(base, json={"member": bob_pid}, headers=admin_headers)
        assert r.status_code == 403 and "Not allowed to create members" in r.text
        r = client.get(base, headers=admin_headers)
        assert r.status_code == 403 and "Only shared images have members" in r.text
        assert client.get(f"{base}/{bob_pid}", headers=admin_headers).status_code == 404
        make_shared(client, admin_headers, image)
        r = client.post(base, json={"member": bob_pid}, headers=admin_headers)
        assert r.status_code == 200, r.text
        created = r.json()
        assert set(created) == {"status", "created_at", "updated_at", "image_id", "member_id", "schema"}
        assert created["status"] == "pending" and created["member_id"] == bob_pid and created["image_id"] == image
        assert created["schema"] == "/v2/schemas/member"
        r = client.post(base, json={"member": bob_pid}, headers=admin_headers)
        assert r.status_code == 409
        for member, code in ((owner, "IMG.0076"), (NO_SUCH_PROJECT, "IMG.0108")):
            r = client.post(base, json={"member": member}, headers=admin_headers)
            assert r.status_code == 400 and error_code(r) == code
        assert client.post(base, json={}, headers=admin_headers).status_code == 400
        assert client.post(base, json={"member": ""}, headers=admin_headers).status_code == 400

        listing = client.get(base, headers=admin_headers).json()
        assert listing["schema"] == "/v2/schemas/members" and [m["member_id"] for m in listing["members"]] == [
            bob_pid]
        assert client.get(f"{base}/{bob_pid}", headers=admin_headers).json()["status"] == "pending"
        assert [m["member_id"] for m in client.get(base, headers=bob).json()["members"]] == [bob_pid]
        # Strangers: 404 everywhere.
        assert client.get(base, headers=eve).status_code == 404
        assert client.get(f"{base}/{bob_pid}", headers=eve).status_code == 404

        # Only the member answers.
        r = client.put(f"{base}/{bob_pid}", json={"status": "accepted"}, headers=admin_headers)
        assert r.status_code == 403
        eve_pid = project_of(client, eve)
        assert client.put(f"{base}/{eve_pid}", json={"status": "accepted"}, headers=eve).status_code == 404
        r = client.put(f"{base}/{bob_pid}", json={"status": "maybe"}, headers=bob)
        assert r.status_code == 400 and error_code(r) == "IMG.0001"
        # Any status to any, pending included (as Glance).
        for status in ("rejected", "pending", "accepted", "pending", "accepted"):
            r = client.put(f"{base}/{bob_pid}", json={"status": status}, headers=bob)
            assert r.status_code == 200 and r.json()["status"] == status
        assert r.json()["updated_at"] >= r.json()["created_at"]
        assert client.get(f"/v2/images/{image}", headers=bob).json()["visibility"] == "shared"
        assert listed(client, bob) == [image]

        # The member may not remove itself or others; the owner removes the membership.
        assert client.delete(f"{base}/{bob_pid}", headers=bob).status_code == 403
        assert client.delete(f"{base}/{bob_pid}", headers=eve).status_code == 404
        assert client.delete(f"{base}/{bob_pid}", headers=admin_headers).status_code == 204
        r = client.delete(f"{base}/{bob_pid}", headers=admin_headers)
        assert r.status_code == 404 and error_code(r) == "IMG.0113"
        assert client.get(f"/v2/images/{image}", headers=bob).status_code == 404
        assert listed(client, bob) == []
        # Glance leaves the visibility as it was; the IMS type is no longer "shared".
        got = client.get(f"/v2/images/{image}", headers=admin_headers).json()
        assert got["visibility"] == "shared" and got["__imagetype"] == "private"

    def test_any_status_takes_members(self, client: TestClient, admin_headers: H, bob_pid: str) -> None:
        r = client.post("/v2/images", json={"name": "queued-shared", "visibility": "shared"}, headers=admin_headers)
        assert r.status_code == 201 and r.json()["status"] == "queued"
        r = client.post(f"/v2/images/{r.json()['id']}/members", json={"member": bob_pid}, headers=admin_headers)
        assert r.status_code == 200 and r.json()["status"] == "pending"

    def test_shared_image_is_never_writable_by_the_member(self, client: TestClient, admin_headers: H,
                                                          runtime: Runtime, image: str, owner: str, bob: H,
                                                          bob_pid: str, eve: H) -> None:
        make_shared(client, admin_headers, image)
        assert client.post(f"/v2/images/{image}/members", json={"member": bob_pid},
                           headers=admin_headers).status_code == 200
        client.put(f"/v2/images/{image}/members/{bob_pid}", json={"status": "accepted"}, headers=bob)
        eve_pid = project_of(client, eve)
        r = client.post(f"/v2/images/{image}/members", json={"member": eve_pid}, headers=bob)
        assert r.status_code == 403 and error_code(r) == "IMG.0047"
        for r in (client.put(f"/v2/images/{image}/tags/mine", headers=bob),
                  client.post(f"/v2/{bob_pid}/images/{image}/tags", json={"tag": {"key": "k", "value": "v"}},
                              headers=bob),
                  client.put("/v1/cloudimages/tags", json={"image_id": image, "tag": "k.v"}, headers=bob)):
            assert r.status_code == 403 and error_code(r) == "IMG.0047", r.text
        # Reading its tags is fine.
        assert client.get(f"/v2/{bob_pid}/images/{image}/tags", headers=bob).json() == {"tags": []}
        r = client.delete(f"/v2/images/{image}", headers=bob)
        assert r.status_code in (403, 404)
        assert client.get(f"/v2/images/{image}", headers=admin_headers).status_code == 200

    def test_deleting_the_image_ends_the_sharing(self, client: TestClient, admin_headers: H, runtime: Runtime,
                                                 image: str, bob: H, bob_pid: str) -> None:
        make_shared(client, admin_headers, image)
        assert client.post(f"/v2/images/{image}/members", json={"member": bob_pid},
                           headers=admin_headers).status_code == 200
        client.put(f"/v2/images/{image}/members/{bob_pid}", json={"status": "accepted"}, headers=bob)
        assert client.delete(f"/v2/images/{image}", headers=admin_headers).status_code == 204
        assert listed(client, bob) == []
        with runtime.db.session() as s:
            assert s.scalars(select(ImageMember).where(ImageMember.image_id == image)).all() == []

    def test_auth(self, client: TestClient, image: str, bob_pid: str) -> None:
        base = f"/v2/images/{image}/members"
        assert client.post(base, json={"member": bob_pid}).status_code == 401
        assert client.get(base).status_code == 401
        assert client.get(f"{base}/{bob_pid}").status_code == 401
        assert client.put(f"{base}/{bob_pid}", json={"status": "accepted"}).status_code == 401
        assert client.delete(f"{base}/{bob_pid}").status_code == 401


def test_member_state_machine() -> None:
    assert members.MemberStatus.PENDING not in members.VALID_TRANSITIONS[members.MemberStatus.ACCEPTED]
    assert members.MemberStatus.ACCEPTED in members.VALID_TRANSITIONS[members.MemberStatus.REJECTED]
    with pytest.raises(Exception, match="use accepted, rejected"):
        members.answer("pending")
    assert members.answer("pending", glance=True) is members.MemberStatus.PENDING
    assert images.statuses_for_filter(None) == ("accepted",)
    assert set(images.statuses_for_filter("all")) == {"pending", "accepted", "rejected"}
