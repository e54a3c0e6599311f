"""Private-image quotas: the default from settings, per-project overrides, atomic reservation.

A project's quota is its ``project_quotas`` row if it has one, else ``Settings.image_quota``.
Every image row a project owns counts, whatever its status: rows are created when a job is
submitted, so a queued import already holds its place and concurrent submissions cannot overshoot.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from openims.catalog.images import count_owned
from openims.db.models import Project, ProjectQuota
from openims.errors import ImsBadRequest, ImsNotFound, ImsQuotaExceeded

# Bounds an administrator may set, reported as ``min``/``max`` (querying_the_image_quota.rst).
MIN_IMAGES = 1
MAX_IMAGES = 100_000


@dataclass(frozen=True)
class ImageQuota:
    project_id: str
    used: int
    quota: int
    # True when the project has its own value rather than the deployment default.
    custom: bool


def image_quota(session: Session, project_id: str, default: int) -> tuple[int, bool]:
    """The project's private-image quota and whether it is a per-project value."""
    row = session.get(ProjectQuota, project_id)
    return (row.images, True) if row is not None else (default, False)


def usage(session: Session, project_id: str, default: int) -> ImageQuota:
    quota, custom = image_quota(session, project_id, default)
    return ImageQuota(project_id, count_owned(session, project_id), quota, custom)


def reserve_images(session: Session, project_id: str, wanted: int, default: int) -> None:
    """Refuse unless ``wanted`` more images fit; the caller then creates them in this transaction.

    The project row is locked first (``FOR UPDATE`` on PostgreSQL; SQLite write transactions
    already hold the database lock from ``BEGIN IMMEDIATE``), so two requests of one project
    count and insert one after the other and cannot both take the last place.
    """
    session.execute(select(Project.id).where(Project.id == project_id).with_for_update())
    quota, _ = image_quota(session, project_id, default)
    used = count_owned(session, project_id)
    if used + wanted > quota:
        raise ImsQuotaExceeded(
            f"The number of private images has reached the maximum allowed ({used} of {quota}).")


def find_project(session: Session, domain_id: str | None, project: str) -> Project:
    """A project of the account by id or name; other accounts' projects do not exist here. The operator
    (``domain_id`` None) names any project by its id."""
    if domain_id is None:
        found = session.get(Project, project)
        if found is None:
            raise ImsNotFound(f"Project {project} does not exist.", code="IMG.0067")
        return found
    found = session.scalar(select(Project).where(Project.domain_id == domain_id, Project.id == project))
    if found is None:
        found = session.scalar(select(Project).where(Project.domain_id == domain_id, Project.name == project))
    if found is None:
        raise ImsNotFound(f"Project {project} does not exist.", code="IMG.0067")
    return found


def set_image_quota(session: Session, project_id: str, images: int | None) -> None:
    """Set the project's quota; None returns it to the deployment default.

    A quota below the current usage is allowed (as with cloud quotas generally): existing images
    stay, new ones are refused until enough are deleted.
    """
    if images is not None and not MIN_IMAGES <= images <= MAX_IMAGES:
        raise ImsBadRequest(f"The image quota must be between {MIN_IMAGES} and {MAX_IMAGES}.", code="IMG.0034")
    # Same lock as reservations, so a change never interleaves with a count-then-insert.
    session.execute(select(Project.id).where(Project.id == project_id).with_for_update())
    row = session.get(ProjectQuota, project_id)
    if images is None:
        if row is not None:
            session.delete(row)
    elif row is None:
        session.add(ProjectQuota(project_id=project_id, images=images))
    else:
        row.images = images
    session.flush()
