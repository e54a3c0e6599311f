"""catalog.metadefs.seed: the shipped namespaces load once, also when two processes start at once."""

from __future__ import annotations

import threading

from sqlalchemy import delete, func, select

from openims.catalog.metadefs import seed
from openims.db.models import MetadefNamespace, MetadefResourceType, MetadefSeed
from openims.runtime import Runtime


def _empty(runtime: Runtime) -> None:
    with runtime.db.transaction() as s:
        for model in (MetadefSeed, MetadefNamespace, MetadefResourceType):
            s.execute(delete(model))


def test_concurrent_first_starts_load_everything_once(runtime: Runtime) -> None:
    _empty(runtime)
    barrier = threading.Barrier(2)
    created: list[list[str]] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            barrier.wait()
            with runtime.db.transaction() as s:
                created.append(seed.seed(s, "service-project", runtime.clock()))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    _, specs = seed.shipped()
    assert sorted(len(c) for c in created) == [0, len(specs)]
    with runtime.db.transaction(readonly=True) as s:
        assert s.scalar(select(func.count()).select_from(MetadefNamespace)) == len(specs)
        assert set(s.scalars(select(MetadefNamespace.owner))) == {"service-project"}
        assert s.scalar(select(func.count()).select_from(MetadefSeed)) == len(specs)


def test_a_namespace_made_before_its_release_shipped_one_is_kept(runtime: Runtime) -> None:
    _empty(runtime)
    now = runtime.clock()
    with runtime.db.transaction() as s:
        s.add(MetadefNamespace(namespace="OpenIMS::OperatingSystem", visibility="private", protected=False,
                               owner="someone", created_at=now, updated_at=now))
    with runtime.db.transaction() as s:
        created = seed.seed(s, "service-project", now)
    assert "OpenIMS::OperatingSystem" not in created and len(created) == len(seed.shipped()[1]) - 1
    with runtime.db.transaction(readonly=True) as s:
        kept = s.scalars(select(MetadefNamespace).where(MetadefNamespace.namespace == "OpenIMS::OperatingSystem"))
        assert [n.owner for n in kept] == ["someone"]
