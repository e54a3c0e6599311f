"""Image tags and image sharing for scripts and the CLI, over an authenticated ``Session``.

Sharing calls are asynchronous jobs on the service (``/v1/cloudimages/members``); with ``wait``
they follow the job and return it finished. A finished job can still hold per-item failures
(``entities.results`` items whose ``status`` is ``fail``): ``failed_items`` picks them out.
"""

from __future__ import annotations

from typing import Any

from openims.client.ims import ImsClient
from openims.client.session import ApiError, Session


def _project(session: Session) -> str:
    project = session.project_id
    if project is None:
        raise ApiError(0, "NoProject", "The token is not scoped to a project.")
    return project


# ---------------------------------------------------------------- tags


def list_tags(session: Session, image_id: str) -> list[dict[str, str]]:
    """The tags of an image as ``[{"key", "value"}]``."""
    tags: list[dict[str, str]] = session.get(f"/v2/{_project(session)}/images/{image_id}/tags").json()["tags"]
    return tags


def add_tags(session: Session, image_id: str, tags: dict[str, str]) -> None:
    """Add or update tags (key → value, "" for none) in one request."""
    body = {"action": "create", "tags": [{"key": k, "value": v} for k, v in tags.items()]}
    session.request("POST", f"/v2/{_project(session)}/images/{image_id}/tags/action", json=body, expect=(204,))


def delete_tag(session: Session, image_id: str, key: str) -> None:
    """Delete the tag with this key; ``ApiError`` 404 when the image has none."""
    session.request("DELETE", f"/v2/{_project(session)}/images/{image_id}/tags/{key}", expect=(204,))


# ---------------------------------------------------------------- sharing


def _finish(session: Session, job_id: str, wait: bool, timeout: float | None) -> dict[str, Any]:
    ims = ImsClient(session)
    return ims.wait_job(job_id, timeout=timeout) if wait else ims.show_job(job_id)


def share(session: Session, images: list[str], projects: list[str], *, wait: bool = True,
          timeout: float | None = 300) -> dict[str, Any]:
    """Share images with projects (of any account); the job, finished when ``wait``."""
    r = session.request("POST", "/v1/cloudimages/members", json={"images": images, "projects": projects})
    return _finish(session, r.json()["job_id"], wait, timeout)


def unshare(session: Session, images: list[str], projects: list[str], *, wait: bool = True,
            timeout: float | None = 300) -> dict[str, Any]:
    r = session.request("DELETE", "/v1/cloudimages/members", json={"images": images, "projects": projects})
    return _finish(session, r.json()["job_id"], wait, timeout)


def answer(session: Session, images: list[str], status: str, *, wait: bool = True,
           timeout: float | None = 300) -> dict[str, Any]:
    """Accept (``accepted``) or reject (``rejected``) images shared with this session's project."""
    body = {"images": images, "project_id": _project(session), "status": status}
    r = session.request("PUT", "/v1/cloudimages/members", json=body)
    return _finish(session, r.json()["job_id"], wait, timeout)


def members(session: Session, image_id: str) -> list[dict[str, Any]]:
    """The projects an image is shared with (a member sees only itself)."""
    found: list[dict[str, Any]] = session.get(f"/v2/images/{image_id}/members").json()["members"]
    return found


def failed_items(job: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in job.get("entities", {}).get("results", []) if r.get("status") != "success"]
