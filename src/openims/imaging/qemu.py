"""Running qemu-img on untrusted image files.

Every call names the input format with ``-f`` (qemu never probes: probing is
how a raw file posing as qcow2 gets its backing file opened), runs under
resource limits and a wall-clock timeout, and the child is killed whatever
happens to the caller.
"""

from __future__ import annotations

import json
import os
import re
import resource
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any, Literal

from openims.imaging.errors import IMG_FORMAT, ConversionFailed, ImageRejected, QemuCause
from openims.imaging.formats import ImageFormat
from openims.units import GiB

StoreFormat = Literal["qcow2", "raw"]
STORE_FORMATS: tuple[StoreFormat, ...] = ("qcow2", "raw")


# `qemu-img info` only parses headers: 1 GiB of address space and 30 s of CPU
# are far more than a legitimate image needs and stop a header bomb.
INFO_ADDRESS_SPACE = 1 * GiB
INFO_CPU_SECONDS = 30
INFO_TIMEOUT = 30.0
# convert runs an I/O thread pool plus format caches; 2 GiB leaves headroom
# for the thread stacks while still bounding a hostile image.
CONVERT_ADDRESS_SPACE = 2 * GiB

_PROGRESS = re.compile(rb"\((\d+(?:\.\d+)?)/100%\)")
# Only what qemu-img needs: no proxy variables, no locale surprises in messages.
_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LC_ALL": "C"}
_STDERR_TAIL = 8192
_OUTPUT_LIMIT = 4 << 20
_MESSAGE_LIMIT = 300


def find_qemu_img() -> str:
    """Return the qemu-img executable, or fail with a message an operator can act on."""
    found = shutil.which("qemu-img", path=os.environ.get("PATH"))
    if found is None:
        raise ConversionFailed("qemu-img is not installed on this server (install the qemu-utils package)",
                               qemu=QemuCause.MISSING)
    return found


def _limited(argv: list[str], address_space: int, cpu_seconds: int, file_size: int | None) -> list[str]:
    """``argv`` run under resource limits, applied by util-linux ``prlimit`` before it execs qemu-img.

    Not a ``preexec_fn``: the server is threaded, and Python code between fork and exec in a
    threaded process can deadlock. The limits are computed here, in the parent.
    """
    # A system tool, looked up on the system path (not the caller's, which only selects qemu-img).
    prlimit = shutil.which("prlimit", path=_ENV["PATH"])
    if prlimit is None:
        raise ConversionFailed("prlimit is not installed on this server (install the util-linux package)",
                               qemu=QemuCause.MISSING)
    wanted: list[tuple[str, int, int, int]] = [
        ("core", resource.RLIMIT_CORE, 0, 0),  # a crashing qemu-img must not dump image data to disk
        ("as", resource.RLIMIT_AS, address_space, address_space),
        # SIGXCPU at the soft limit; the hard limit is the SIGKILL backstop.
        ("cpu", resource.RLIMIT_CPU, cpu_seconds, cpu_seconds + 5),
    ]
    if file_size is not None:
        wanted.append(("fsize", resource.RLIMIT_FSIZE, file_size, file_size))
    options = []
    for name, which, soft, hard in wanted:
        _, current_hard = resource.getrlimit(which)
        if current_hard != resource.RLIM_INFINITY:
            # An unprivileged process may only lower its limits.
            hard = min(hard, current_hard)
            soft = min(soft, hard)
        options.append(f"--{name}={soft}:{hard}")
    return [prlimit, *options, "--", *argv]


def _absolute(path: Path) -> Path:
    # An absolute path starts with "/", so qemu can never read a "proto:"
    # prefix (nbd:, json:, ...) out of a file name.
    return Path(os.path.abspath(path))


def _message(stderr: bytes, paths: Sequence[Path]) -> str:
    """qemu-img's error text, without our server paths and bounded in length."""
    text = stderr.decode("utf-8", "replace")
    for path in paths:
        text = text.replace(str(path), path.name)
    lines = [line.strip().removeprefix("qemu-img: ") for line in text.splitlines() if line.strip()]
    message = "; ".join(lines) or "no error message"
    if len(message) > _MESSAGE_LIMIT:
        message = message[: _MESSAGE_LIMIT - 3] + "..."
    return message


def _signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def _killed(what: str, returncode: int) -> ConversionFailed:
    if returncode == -signal.SIGXCPU:
        return ConversionFailed(f"{what} exceeded its CPU time limit", qemu=QemuCause.CPU_LIMIT)
    if returncode == -signal.SIGXFSZ:
        return ConversionFailed(f"{what} wrote more data than the image can hold", qemu=QemuCause.OUTPUT_LIMIT)
    return ConversionFailed(f"{what} crashed ({_signal_name(returncode)})", qemu=QemuCause.CRASHED)


def _run_bounded(argv: list[str], timeout: float, what: str) -> tuple[int, bytes, bytes]:
    """Run a short qemu-img command under the header-parsing limits.

    Output goes to temporary files, not memory: a damaged image can make
    `qemu-img check` print an error line per cluster.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            # run() kills the child itself on timeout or on any exception.
            proc = subprocess.run(
                # The file size limit also caps what qemu-img can write to the
                # two output files: a forged image can trigger millions of errors.
                _limited(argv, INFO_ADDRESS_SPACE, INFO_CPU_SECONDS, _OUTPUT_LIMIT),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                timeout=timeout,
                env=_ENV,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ConversionFailed(f"{what} timed out after {timeout:g} s", qemu=QemuCause.TIMEOUT) from None
        except OSError as exc:
            raise ConversionFailed(f"qemu-img could not be started: {exc.strerror}", qemu=QemuCause.MISSING) from None
        if proc.returncode == -signal.SIGXFSZ:
            raise ImageRejected(IMG_FORMAT, f"the file is damaged: {what} reported too many errors",
                                qemu=QemuCause.OUTPUT_LIMIT)
        if proc.returncode < 0:
            raise _killed(what, proc.returncode)
        out.seek(0)
        return proc.returncode, out.read(), _tail(err)


def _tail(file: IO[bytes]) -> bytes:
    file.seek(0, os.SEEK_END)
    file.seek(max(0, file.tell() - _STDERR_TAIL))
    return file.read()


def _parse_json(what: str, output: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(output)
    except ValueError:
        raise ConversionFailed(f"{what} printed output that is not JSON", qemu=QemuCause.BAD_OUTPUT) from None
    if not isinstance(parsed, dict):
        raise ConversionFailed(f"{what} printed unexpected JSON", qemu=QemuCause.BAD_OUTPUT)
    return parsed


def qemu_img_same_disk(a: Path, b: Path, fmt: str, *, timeout: float) -> bool:
    """Whether two images of format ``fmt`` (one of ours) hold the same guest data (``qemu-img compare``).

    Exported vmdk and vhd files carry random ids and timestamps, and ``-W`` writes qcow2 clusters in
    any order, so two exports of one disk differ as bytes: only their content can be compared.
    """
    qemu_fmt = "vpc" if fmt == "vhd" else fmt
    argv = [find_qemu_img(), "compare", "-q", "--force-share", "-f", qemu_fmt, "-F", qemu_fmt,
            str(_absolute(a)), str(_absolute(b))]
    try:
        proc = subprocess.run(_limited(argv, CONVERT_ADDRESS_SPACE, int(timeout) + 10, _OUTPUT_LIMIT),
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=timeout, env=_ENV, check=False)
    except subprocess.TimeoutExpired:
        raise ConversionFailed(f"qemu-img compare timed out after {timeout:g} s", qemu=QemuCause.TIMEOUT) from None
    except OSError as exc:
        raise ConversionFailed(f"qemu-img could not be started: {exc.strerror}", qemu=QemuCause.MISSING) from None
    # 0 same, 1 different, 2 error (e.g. not an image of that format): only 0 is "the same disk".
    return proc.returncode == 0


def qemu_img_info(path: Path, fmt: ImageFormat, *, timeout: float = INFO_TIMEOUT) -> dict[str, Any]:
    """Run ``qemu-img info -f <fmt> --output=json`` on ``path`` under limits.

    Raises ImageRejected (IMG.0057) if qemu-img cannot read the file as
    ``fmt``, ConversionFailed if qemu-img is missing, crashes or times out.
    """
    target = _absolute(path)
    argv = [find_qemu_img(), "info", "--force-share", "-f", fmt.qemu_name, "--output=json", str(target)]
    returncode, output, errors = _run_bounded(argv, timeout, "qemu-img info")
    if returncode != 0:
        raise ImageRejected(
            IMG_FORMAT, f"the file cannot be read as {fmt.value}: {_message(errors, [target])}",
            qemu=QemuCause.REFUSED,
        )
    return _parse_json("qemu-img info", output)


def qemu_img_data_end(path: Path, fmt: ImageFormat, *, timeout: float = INFO_TIMEOUT) -> int:
    """The end of the furthest data in the file, per ``qemu-img map``.

    For formats qemu has no checker for: a result beyond the file size means
    the file was cut off (qemu would silently read the missing part as zeros).
    """
    target = _absolute(path)
    argv = [find_qemu_img(), "map", "--force-share", "-f", fmt.qemu_name, "--output=json", str(target)]
    returncode, output, errors = _run_bounded(argv, timeout, "qemu-img map")
    if returncode != 0:
        raise ImageRejected(
            IMG_FORMAT, f"the {fmt.value} file is damaged or truncated: {_message(errors, [target])}",
            qemu=QemuCause.REFUSED,
        )
    try:
        extents = json.loads(output)
    except ValueError:
        raise ConversionFailed("qemu-img map printed output that is not JSON", qemu=QemuCause.BAD_OUTPUT) from None
    end = 0
    for extent in extents if isinstance(extents, list) else []:
        if isinstance(extent, dict) and isinstance(extent.get("offset"), int):
            end = max(end, extent["offset"] + int(extent.get("length", 0)))
    return end


# `qemu-img check` exit codes: 0 clean, 1 check failed, 2 corruptions,
# 3 only leaked clusters (harmless for reading), 63 format has no checker.
_CHECK_CLEAN = {0, 3, 63}


def qemu_img_check(path: Path, fmt: ImageFormat, *, timeout: float = INFO_TIMEOUT) -> None:
    """Run ``qemu-img check`` (read-only) and refuse damaged or truncated images.

    qemu-img convert reads clusters past the end of a truncated file as
    zeros, so without this check a cut-off upload would import "successfully".
    """
    target = _absolute(path)
    argv = [find_qemu_img(), "check", "--force-share", "-f", fmt.qemu_name, "--output=json", str(target)]
    returncode, output, errors = _run_bounded(argv, timeout, "qemu-img check")
    if returncode in _CHECK_CLEAN:
        return
    if returncode == 2:
        report = _parse_json("qemu-img check", output)
        count = report.get("corruptions", "some")
        raise ImageRejected(
            IMG_FORMAT, f"the {fmt.value} file is damaged or truncated ({count} corrupt metadata entries)",
            qemu=QemuCause.REFUSED,
        )
    raise ImageRejected(
        IMG_FORMAT, f"the {fmt.value} file is damaged or truncated: {_message(errors, [target])}",
        qemu=QemuCause.REFUSED,
    )


class _DeadlineExceeded(Exception):
    pass


def _follow_progress(
    proc: subprocess.Popen[bytes], deadline: float, progress: Callable[[float], None] | None
) -> None:
    """Read qemu-img's stdout until EOF, reporting "(12.34/100%)" records."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    pending = b""
    last = -1.0
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _DeadlineExceeded
            if not selector.select(remaining):
                continue
            data = os.read(fd, 4096)
            if not data:
                return
            # qemu-img rewrites its progress line with "\r"; split on both.
            *records, pending = re.split(rb"[\r\n]", pending + data)
            # Bound what we keep if a line never ends.
            pending = pending[-256:]
            if progress is None:
                continue
            for record in records:
                match = _PROGRESS.search(record)
                if match is None:
                    continue
                value = min(100.0, max(0.0, float(match.group(1))))
                if value != last:
                    last = value
                    progress(value)


def qemu_img_convert(
    src: Path,
    src_fmt: ImageFormat,
    dst: Path,
    dst_fmt: StoreFormat,
    *,
    timeout: float,
    progress: Callable[[float], None] | None = None,
    max_output_size: int | None = None,
) -> None:
    """Convert ``src`` (read as ``src_fmt``) into a new ``dst_fmt`` image at ``dst``.

    ``progress`` receives percentages (0.0-100.0) as qemu-img reports them.
    ``max_output_size`` caps the bytes qemu-img may write (RLIMIT_FSIZE).
    On any failure ``dst`` is removed and the child is killed.
    """
    if dst_fmt not in STORE_FORMATS:
        raise ValueError(f"unsupported output format {dst_fmt!r}")
    _convert(src, src_fmt, dst, _OUTPUT_OPTIONS[dst_fmt], timeout=timeout, progress=progress,
             max_output_size=max_output_size)


ExportFormat = Literal["qcow2", "raw", "vmdk", "vhd"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("qcow2", "raw", "vmdk", "vhd")

# qemu-img output options per format we write.
_OUTPUT_OPTIONS: dict[str, list[str]] = {
    # Pin the qcow2 version so stored images do not depend on qemu's default.
    "qcow2": ["-O", "qcow2", "-o", "compat=1.1"],
    "raw": ["-O", "raw"],
    # A single sparse file: what VMware, VirtualBox and most importers read.
    "vmdk": ["-O", "vmdk", "-o", "subformat=monolithicSparse"],
    # Without force_size qemu rounds the disk up to a CHS geometry, so the exported disk would not
    # be the same size as the image.
    "vhd": ["-O", "vpc", "-o", "subformat=dynamic,force_size=on"],
}


def qemu_img_export(
    src: Path,
    src_fmt: ImageFormat,
    dst: Path,
    dst_fmt: ExportFormat,
    *,
    timeout: float,
    progress: Callable[[float], None] | None = None,
    max_output_size: int | None = None,
) -> None:
    """Like ``qemu_img_convert``, into any format an image can be exported to (``EXPORT_FORMATS``)."""
    if dst_fmt not in EXPORT_FORMATS:
        raise ValueError(f"unsupported export format {dst_fmt!r}")
    _convert(src, src_fmt, dst, _OUTPUT_OPTIONS[dst_fmt], timeout=timeout, progress=progress,
             max_output_size=max_output_size)


def _convert(
    src: Path,
    src_fmt: ImageFormat,
    dst: Path,
    output_options: list[str],
    *,
    timeout: float,
    progress: Callable[[float], None] | None,
    max_output_size: int | None,
) -> None:
    exe = find_qemu_img()
    source = _absolute(src)
    target = _absolute(dst)
    # -W: out-of-order writes; the result is the same disk, written ~20 % faster (qemu-img docs).
    argv = [exe, "convert", "-p", "-W", "-f", src_fmt.qemu_name, *output_options, str(source), str(target)]
    cpu_seconds = int(timeout * 2) + 10  # the I/O threads may use both cores
    done = False
    try:
        with tempfile.TemporaryFile() as stderr_file:
            try:
                proc = subprocess.Popen(
                    _limited(argv, CONVERT_ADDRESS_SPACE, cpu_seconds, max_output_size),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    # A file rather than a pipe: nobody has to drain it while we read stdout.
                    stderr=stderr_file,
                    env=_ENV,
                )
            except OSError as exc:
                raise ConversionFailed(f"qemu-img could not be started: {exc.strerror}",
                                       qemu=QemuCause.MISSING) from None
            deadline = time.monotonic() + timeout
            try:
                _follow_progress(proc, deadline, progress)
                returncode = proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except (_DeadlineExceeded, subprocess.TimeoutExpired):
                raise ConversionFailed(f"conversion timed out after {timeout:g} s", qemu=QemuCause.TIMEOUT) from None
            finally:
                # Whatever went wrong here (even KeyboardInterrupt), never leave qemu-img running.
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                if proc.stdout is not None:
                    proc.stdout.close()
            if returncode < 0:
                raise _killed("qemu-img convert", returncode)
            if returncode != 0:
                message = _message(_tail(stderr_file), [source, target])
                if "No space left" in message or "Input/output error" in message:
                    raise ConversionFailed(f"the server could not write the converted image: {message}",
                                           qemu=QemuCause.WRITE_ERROR)
                raise ImageRejected(IMG_FORMAT, f"the image could not be converted: {message}",
                                    qemu=QemuCause.REFUSED)
        done = True
    finally:
        if not done:
            target.unlink(missing_ok=True)
