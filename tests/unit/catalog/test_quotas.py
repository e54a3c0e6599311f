"""catalog.quotas: default vs per-project quota, bounds, reservation, project lookup within an account."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.orm import Session

from openims.catalog import quotas
from openims.db.models import Domain, Image, Project, ProjectQuota
from openims.errors import ImsBadRequest, ImsNotFound, ImsQuotaExceeded
from openims.runtime import Runtime

DEFAULT = 3


def _project(s: Session, runtime: Runtime, name: str = "local-1", domain: str = "admin") -> Project:
    d = s.query(Domain).filter_by(name=domain).one_or_none()
    if d is None:
        d = Domain(id=uuid.uuid4().hex, name=domain, created_at=runtime.clock())
        s.add(d)
        s.flush()
    p = s.query(Project).filter_by(name=name, domain_id=d.id).one_or_none()
    if p is None:
        p = Project(id=uuid.uuid4().hex, name=name, domain_id=d.id, created_at=runtime.clock())
        s.add(p)
        s.flush()
    return p


def _images(s: Session, runtime: Runtime, project_id: str, n: int, status: str = "queued") -> None:
    now = runtime.clock()
    for _ in range(n):
        s.add(Image(id=str(uuid.uuid4()), owner=project_id, status=status, created_at=now, updated_at=now,
                    properties={}))
    s.flush()


def test_default_until_a_project_value_is_set(runtime: Runtime) -> None:
    with runtime.db.transaction() as s:
        p = _project(s, runtime)
        _images(s, runtime, p.id, 2)
        _images(s, runtime, p.id, 1, status="active")
        assert quotas.usage(s, p.id, DEFAULT) == quotas.ImageQuota(p.id, used=3, quota=DEFAULT, custom=False)
        quotas.set_image_quota(s, p.id, 10)
        assert quotas.usage(s, p.id, DEFAULT) == quotas.ImageQuota(p.id, used=3, quota=10, custom=True)
        quotas.set_image_quota(s, p.id, 7)
        assert quotas.image_quota(s, p.id, DEFAULT) == (7, True)
        assert s.query(ProjectQuota).count() == 1
        quotas.set_image_quota(s, p.id, None)
        assert quotas.image_quota(s, p.id, DEFAULT) == (DEFAULT, False)
        assert s.query(ProjectQuota).count() == 0
        quotas.set_image_quota(s, p.id, None)  # resetting twice is fine


@pytest.mark.parametrize("value", [0, -1, quotas.MAX_IMAGES + 1])
def test_bounds(runtime: Runtime, value: int) -> None:
    with runtime.db.transaction() as s:
        p = _project(s, runtime)
        with pytest.raises(ImsBadRequest) as caught:
            quotas.set_image_quota(s, p.id, value)
        assert caught.value.code == "IMG.0034"
        quotas.set_image_quota(s, p.id, quotas.MIN_IMAGES)
        quotas.set_image_quota(s, p.id, quotas.MAX_IMAGES)


def test_reserve_counts_every_image_of_the_project(runtime: Runtime) -> None:
    with runtime.db.transaction() as s:
        p = _project(s, runtime)
        other = _project(s, runtime, "local-1_other", "other")
        _images(s, runtime, other.id, 5)  # another project's images never count
        quotas.reserve_images(s, p.id, DEFAULT, DEFAULT)
        _images(s, runtime, p.id, 2)
        quotas.reserve_images(s, p.id, 1, DEFAULT)
        with pytest.raises(ImsQuotaExceeded) as caught:
            quotas.reserve_images(s, p.id, 2, DEFAULT)
        assert caught.value.code == "IMG.0015" and "2 of 3" in caught.value.message
        # A lower per-project quota than the images already there refuses any new one.
        quotas.set_image_quota(s, p.id, 1)
        with pytest.raises(ImsQuotaExceeded):
            quotas.reserve_images(s, p.id, 1, DEFAULT)
        assert quotas.usage(s, p.id, DEFAULT).used == 2


def test_find_project_within_the_account_only(runtime: Runtime) -> None:
    with runtime.db.transaction() as s:
        mine = _project(s, runtime)
        theirs = _project(s, runtime, "local-1_other", "other")
        assert quotas.find_project(s, mine.domain_id, mine.id).id == mine.id
        assert quotas.find_project(s, mine.domain_id, "local-1").id == mine.id
        for ref in (theirs.id, "local-1_other", "missing"):
            with pytest.raises(ImsNotFound) as caught:
                quotas.find_project(s, mine.domain_id, ref)
            assert caught.value.code == "IMG.0067"
