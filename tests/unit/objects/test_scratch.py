"""The scratch area's rules: one limit per host, reservations that free their space on every exit,
and the space of processes that died given back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from openims.objects.scratch import Scratch, ScratchFull, ScratchTooSmall

MiB = 1 << 20


def test_reservations_share_one_limit(tmp_path: Path) -> None:
    scratch = Scratch(tmp_path, 10 * MiB)
    first = scratch.try_reserve("job-a", 6 * MiB)
    with pytest.raises(ScratchFull) as full:
        scratch.try_reserve("job-b", 6 * MiB)
    assert "needs 6.0 MiB" in str(full.value) and "4.0 MiB" in str(full.value)
    # Another process on the host (a second worker) sees the same reservations.
    assert Scratch(tmp_path, 10 * MiB).used() == 6 * MiB
    scratch.release(first)
    assert scratch.try_reserve("job-b", 6 * MiB).size == 6 * MiB


def test_more_than_the_limit_can_never_fit(tmp_path: Path) -> None:
    with pytest.raises(ScratchTooSmall) as never:
        Scratch(tmp_path, 10 * MiB).try_reserve("job-a", 11 * MiB)
    assert "OPENIMS_SCRATCH_LIMIT" in str(never.value)


def test_a_reservation_gives_back_its_directory_on_every_exit(tmp_path: Path) -> None:
    scratch = Scratch(tmp_path, 10 * MiB)
    with pytest.raises(RuntimeError), scratch.reserved("job-a", MiB) as r:
        (r.path / "source").write_bytes(b"x" * 1000)
        raise RuntimeError("the import failed")
    assert not r.path.exists() and scratch.used() == 0


def test_the_space_of_a_dead_process_is_swept(tmp_path: Path) -> None:
    # A reservation made by another process that then died (as a worker killed mid-download).
    code = ("import sys; from pathlib import Path; from openims.objects.scratch import Scratch; "
            "r = Scratch(Path(sys.argv[1]), 10 << 20).try_reserve('dead-job', 8 << 20); "
            "(r.path / 'source').write_bytes(b'x')")
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True)
    scratch = Scratch(tmp_path, 10 * MiB)
    assert scratch.used() == 8 * MiB and (tmp_path / "work" / "dead-job" / "source").exists()
    # Needing the space finds it: the dead process's reservation and files go.
    assert scratch.try_reserve("job-b", 8 * MiB).size == 8 * MiB
    assert not (tmp_path / "work" / "dead-job").exists()
    assert json.loads((tmp_path / ".reservations" / "job-b").read_text())["size"] == 8 * MiB


def test_a_live_reservation_survives_a_sweep(tmp_path: Path) -> None:
    scratch = Scratch(tmp_path, 10 * MiB)
    r = scratch.try_reserve("job-a", MiB)
    (tmp_path / "work" / "stray").mkdir()  # a directory whose reservation is gone
    assert scratch.sweep() == 0
    assert r.path.exists() and not (tmp_path / "work" / "stray").exists()


@pytest.mark.parametrize("owner", ["../escape", "a/b", "", "x" * 200])
def test_owner_names_are_never_paths(tmp_path: Path, owner: str) -> None:
    with pytest.raises(ValueError):
        Scratch(tmp_path, MiB).try_reserve(owner, 1)
