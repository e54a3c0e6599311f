"""The state machines of images and jobs: transitions along their tables, and no other way to write a status."""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import pytest

import openims
from openims.catalog import images, jobs
from openims.catalog.images import ImageStatus, InvalidTransition
from openims.catalog.jobs import JobStatus
from openims.db.models import Image, Job

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
SRC = Path(openims.__file__).parent

# Where a ``status`` may be assigned, and why. Image and job statuses: only their transition
# functions. The other entities with a status (members, projects, access keys) and the HTTP
# status of errors are not these state machines.
ALLOWED = {
    ("catalog/images.py", "transition"),
    ("catalog/images.py", "transition_where"),
    ("catalog/jobs.py", "transition"),
    ("catalog/members.py", "set_status"),  # a member's answer, along members.VALID_TRANSITIONS
    ("iam/admin.py", "set_project_status"),
    ("iam/access_keys.py", "update_permanent"),
    ("errors.py", "__init__"),
    ("errors.py", "__init_subclass__"),  # the HTTP status an error class declares
    ("client/session.py", "__init__"),
}


def _writes(path: Path) -> list[tuple[str, int]]:
    """(function, line) of every ``x.status = …``, ``setattr(x, "status", …)`` and ``.values(status=…)``."""
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST, func: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else func
            if isinstance(child, ast.Assign | ast.AugAssign | ast.AnnAssign):
                targets = child.targets if isinstance(child, ast.Assign) else [child.target]
                if any(isinstance(t, ast.Attribute) and t.attr == "status" for t in targets):
                    found.append((name, child.lineno))
            call = child if isinstance(child, ast.Call) else None
            if (call is not None and isinstance(call.func, ast.Attribute) and call.func.attr == "values"
                    and any(k.arg == "status" for k in call.keywords)):
                found.append((name, call.lineno))
            if (call is not None and isinstance(call.func, ast.Name) and call.func.id == "setattr"
                    and len(call.args) > 1 and isinstance(call.args[1], ast.Constant)
                    and call.args[1].value == "status"):
                found.append((name, call.lineno))
            visit(child, name)

    visit(ast.parse(path.read_text()), "<module>")
    return found


def test_no_module_writes_a_status_past_the_transition_functions() -> None:
    offenders = []
    writers = set()
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith("db/migrations/"):
            continue
        for func, line in _writes(path):
            writers.add((rel, func))
            if (rel, func) not in ALLOWED:
                offenders.append(f"{rel}:{line} in {func}")
    assert offenders == []
    assert writers >= ALLOWED  # no stale exemption


def _image(status: ImageStatus) -> Image:
    return Image(id="i", status=status.value, updated_at=NOW)


@pytest.mark.parametrize("current", list(ImageStatus))
@pytest.mark.parametrize("target", list(ImageStatus))
def test_image_transitions_follow_the_table(current: ImageStatus, target: ImageStatus) -> None:
    image = _image(current)
    later = NOW + dt.timedelta(seconds=1)
    if target in images.VALID_TRANSITIONS[current]:
        images.transition(image, target, later)
        assert (image.status, image.updated_at) == (target.value, later)
    else:
        with pytest.raises(InvalidTransition):
            images.transition(image, target, later)
        assert image.status == current.value


def test_an_active_image_never_goes_back() -> None:
    # Its data stays: only deactivation (Glance's, reversible) or deletion.
    assert images.VALID_TRANSITIONS[ImageStatus.ACTIVE] == {ImageStatus.DELETED, ImageStatus.DEACTIVATED}
    assert images.VALID_TRANSITIONS[ImageStatus.DEACTIVATED] == {ImageStatus.ACTIVE, ImageStatus.DELETED}


def test_bulk_transitions_take_their_sources_from_the_table() -> None:
    stmt = images.transition_where(ImageStatus.ACTIVE, Image.id == "i")
    sql = str(stmt.compile(compile_kwargs={"literal_binds": True}))
    assert "status IN ('saving', 'importing', 'deactivated')" in sql and "SET status='active'" in sql
    narrowed = str(images.transition_where(ImageStatus.SAVING, sources=(ImageStatus.QUEUED,))
                   .compile(compile_kwargs={"literal_binds": True}))
    assert "status IN ('queued')" in narrowed
    with pytest.raises(InvalidTransition):
        images.transition_where(ImageStatus.QUEUED, sources=(ImageStatus.ACTIVE,))


@pytest.mark.parametrize("current", list(JobStatus))
@pytest.mark.parametrize("target", list(JobStatus))
def test_job_transitions_follow_the_table(current: JobStatus, target: JobStatus) -> None:
    job = Job(id="j", status=current.value)
    if target in jobs.VALID_TRANSITIONS[current]:
        jobs.transition(job, target)
        assert job.status == target.value
    else:
        with pytest.raises(RuntimeError, match="not allowed"):
            jobs.transition(job, target)
        assert job.status == current.value


def test_finishing_a_job_clears_its_lease() -> None:
    job = Job(id="j", status=JobStatus.RUNNING.value, lease_owner="w", lease_expires_at=NOW)
    jobs.finish(job, JobStatus.FAIL, NOW, error_code="IMG.0061", fail_reason="x")
    assert (job.status, job.lease_owner, job.lease_expires_at, job.end_time) == ("FAIL", None, None, NOW)
    with pytest.raises(RuntimeError):
        jobs.finish(job, JobStatus.SUCCESS, NOW)
