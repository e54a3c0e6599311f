"""Fixtures for the imaging tests: tiny disk images made with qemu-img at test time."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.imaging.imaging_support import (
    QemuImg,
    Sample,
    VmdkEditor,
    build_samples,
    rewrite_vmdk_descriptor,
    run_qemu_img,
    write_source_raw,
)


@pytest.fixture(scope="session")
def qemu_img() -> QemuImg:
    """Run qemu-img with arguments; returns stdout, raises on failure."""
    return run_qemu_img


@pytest.fixture(scope="session")
def source_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2 MiB raw disk: random data, a hole of zeros, then a text pattern."""
    return write_source_raw(tmp_path_factory.mktemp("source") / "disk.raw")


@pytest.fixture(scope="session")
def samples(tmp_path_factory: pytest.TempPathFactory, source_raw: Path) -> dict[str, Sample]:
    """One image per supported format, all holding the data of ``source_raw``."""
    return build_samples(tmp_path_factory.mktemp("samples"), source_raw)


@pytest.fixture(scope="session")
def vmdk_editor() -> VmdkEditor:
    return rewrite_vmdk_descriptor
