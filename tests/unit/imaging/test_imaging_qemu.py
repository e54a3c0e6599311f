"""Running qemu-img: limits, timeouts, crashes, progress, error messages."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from openims.imaging import ConversionFailed, ImageFormat, ImageRejected, QemuCause, qemu_img_convert, qemu_img_info
from tests.unit.imaging.imaging_support import Sample

MiB = 1 << 20
GiB = 1 << 30

FakeQemu = Callable[[str], Path]


@pytest.fixture
def fake_qemu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeQemu:
    """Put a shell script named qemu-img alone on PATH."""
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    monkeypatch.setenv("PATH", str(bindir))

    def install(body: str) -> Path:
        script = bindir / "qemu-img"
        script.write_text("#!/bin/sh\n" + body)
        script.chmod(0o755)
        return script

    return install


def _limits(path: Path) -> dict[str, tuple[str, str]]:
    """Parse a copy of /proc/<pid>/limits into name -> (soft, hard)."""
    limits = {}
    for line in path.read_text().splitlines()[1:]:
        name, soft, hard = line[:26].strip(), *line[26:].split()[:2]
        limits[name] = (soft, hard)
    return limits


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


# --- real qemu-img -----------------------------------------------------------------------------


def test_info_returns_qemu_json(samples: dict[str, Sample]) -> None:
    info = qemu_img_info(samples["vhd-dynamic"].path, ImageFormat.VHD)
    assert info["format"] == "vpc"
    assert info["virtual-size"] >= 2 * MiB


def test_info_with_the_wrong_format_is_a_rejection(samples: dict[str, Sample]) -> None:
    with pytest.raises(ImageRejected) as caught:
        qemu_img_info(samples["raw"].path, ImageFormat.QCOW2)
    assert caught.value.code == "IMG.0057"
    assert not isinstance(caught.value, ConversionFailed)
    assert caught.value.qemu is QemuCause.REFUSED


def test_convert_reports_progress(samples: dict[str, Sample], tmp_path: Path) -> None:
    seen: list[float] = []
    target = tmp_path / "out.raw"
    qemu_img_convert(
        samples["qcow2"].path, ImageFormat.QCOW2, target, "raw", timeout=30, progress=seen.append
    )
    assert target.stat().st_size == 2 * MiB
    assert seen
    assert seen == sorted(seen)
    assert seen[-1] == 100.0


def test_convert_refuses_other_output_formats(samples: dict[str, Sample], tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        qemu_img_convert(samples["raw"].path, ImageFormat.RAW, tmp_path / "x", "vmdk", timeout=5)  # type: ignore[arg-type]


# --- fake qemu-img -----------------------------------------------------------------------------


def test_progress_records_split_across_reads(fake_qemu: FakeQemu, tmp_path: Path) -> None:
    fake_qemu(
        "printf '    (0.00/100%%)\\r'\nsleep 0.05\nprintf '    (12.5'\nsleep 0.05\n"
        "printf '0/100%%)\\r    (100.00/100%%)\\r\\n'\n"
    )
    seen: list[float] = []
    qemu_img_convert(
        tmp_path / "in", ImageFormat.RAW, tmp_path / "out", "qcow2", timeout=10, progress=seen.append
    )
    assert seen == [0.0, 12.5, 100.0]


def test_convert_timeout_kills_qemu_img(fake_qemu: FakeQemu, tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    fake_qemu(f"echo $$ > {pidfile}\nexec sleep 30\n")
    target = tmp_path / "out.qcow2"
    target.write_bytes(b"partial")
    started = time.monotonic()
    with pytest.raises(ConversionFailed) as caught:
        qemu_img_convert(tmp_path / "in", ImageFormat.RAW, target, "qcow2", timeout=0.5)
    assert time.monotonic() - started < 5
    assert caught.value.code == "IMG.0061"
    assert caught.value.reason == "conversion timed out after 0.5 s"
    assert caught.value.qemu is QemuCause.TIMEOUT
    assert _gone(int(pidfile.read_text()))
    assert not target.exists()


def test_convert_killed_when_the_caller_fails(fake_qemu: FakeQemu, tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    fake_qemu(f"echo $$ > {pidfile}\nprintf '    (1.00/100%%)\\r'\nexec sleep 30\n")

    def explode(_: float) -> None:
        raise RuntimeError("caller gave up")

    with pytest.raises(RuntimeError):
        qemu_img_convert(
            tmp_path / "in", ImageFormat.RAW, tmp_path / "out", "qcow2", timeout=30, progress=explode
        )
    assert _gone(int(pidfile.read_text()))


def test_info_timeout(fake_qemu: FakeQemu, tmp_path: Path) -> None:
    fake_qemu("exec sleep 30\n")
    with pytest.raises(ConversionFailed) as caught:
        qemu_img_info(tmp_path / "in", ImageFormat.QCOW2, timeout=0.5)
    assert caught.value.code == "IMG.0061"
    assert "timed out" in caught.value.reason
    assert caught.value.qemu is QemuCause.TIMEOUT


@pytest.mark.parametrize("command", ["info", "convert"])
def test_crash_is_an_internal_error(command: str, fake_qemu: FakeQemu, tmp_path: Path) -> None:
    fake_qemu("kill -SEGV $$\n")
    with pytest.raises(ConversionFailed) as caught:
        if command == "info":
            qemu_img_info(tmp_path / "in", ImageFormat.QCOW2)
        else:
            qemu_img_convert(tmp_path / "in", ImageFormat.QCOW2, tmp_path / "out", "qcow2", timeout=10)
    assert caught.value.code == "IMG.0061"
    assert "crashed (SIGSEGV)" in caught.value.reason
    assert caught.value.qemu is QemuCause.CRASHED


def test_missing_qemu_img(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConversionFailed) as caught:
        qemu_img_info(tmp_path / "in", ImageFormat.QCOW2)
    assert "qemu-img is not installed" in caught.value.reason
    assert caught.value.qemu is QemuCause.MISSING


def test_info_runs_under_limits(fake_qemu: FakeQemu, tmp_path: Path) -> None:
    copy = tmp_path / "limits"
    fake_qemu(f"cat /proc/self/limits > {copy}\necho '{{}}'\n")
    assert qemu_img_info(tmp_path / "in", ImageFormat.QCOW2) == {}
    limits = _limits(copy)
    assert limits["Max address space"] == (str(GiB), str(GiB))
    assert limits["Max cpu time"][0] == "30"
    assert limits["Max core file size"] == ("0", "0")
    assert limits["Max file size"][0] == str(4 * MiB)


def test_convert_runs_under_limits(fake_qemu: FakeQemu, tmp_path: Path) -> None:
    copy = tmp_path / "limits"
    fake_qemu(f"cat /proc/self/limits > {copy}\n")
    qemu_img_convert(
        tmp_path / "in", ImageFormat.RAW, tmp_path / "out", "raw", timeout=10, max_output_size=10 * MiB
    )
    limits = _limits(copy)
    assert limits["Max address space"][0] == str(2 * GiB)
    assert limits["Max core file size"] == ("0", "0")
    assert limits["Max file size"][0] == str(10 * MiB)
    assert limits["Max cpu time"][0] == "30"


def test_convert_passes_explicit_formats(fake_qemu: FakeQemu, tmp_path: Path) -> None:
    argv = tmp_path / "argv"
    fake_qemu(f'printf "%s\\n" "$@" > {argv}\n')
    qemu_img_convert(Path("rel/in.vhd"), ImageFormat.VHD, tmp_path / "out", "qcow2", timeout=10)
    args = argv.read_text().splitlines()
    assert args[:7] == ["convert", "-p", "-W", "-f", "vpc", "-O", "qcow2"]
    # Relative names are made absolute so that qemu never sees a "proto:" prefix.
    assert args[-2] == os.path.abspath("rel/in.vhd")
    assert args[-1] == str(tmp_path / "out")


def test_failed_conversion_message_hides_server_paths(fake_qemu: FakeQemu, tmp_path: Path) -> None:
    fake_qemu('echo "qemu-img: error while reading $*: Invalid argument" >&2\nexit 1\n')
    target = tmp_path / "out.qcow2"
    with pytest.raises(ImageRejected) as caught:
        qemu_img_convert(tmp_path / "upload.vmdk", ImageFormat.VMDK, target, "qcow2", timeout=10)
    assert caught.value.code == "IMG.0057"
    assert not isinstance(caught.value, ConversionFailed)
    assert "upload.vmdk" in caught.value.reason
    assert str(tmp_path) not in caught.value.reason
    assert not target.exists()
    assert caught.value.qemu is QemuCause.REFUSED


def test_full_disk_is_an_internal_error(fake_qemu: FakeQemu, tmp_path: Path) -> None:
    fake_qemu('echo "qemu-img: error while writing at byte 0: No space left on device" >&2\nexit 1\n')
    with pytest.raises(ConversionFailed) as caught:
        qemu_img_convert(tmp_path / "in", ImageFormat.RAW, tmp_path / "out", "qcow2", timeout=10)
    assert caught.value.code == "IMG.0061"
    assert caught.value.qemu is QemuCause.WRITE_ERROR
