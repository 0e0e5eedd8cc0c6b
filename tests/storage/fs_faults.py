"""Real file-system faults for the store tests: unwritable directories, read-only mounts, ENOSPC.

Root ignores permission bits (CAP_DAC_OVERRIDE), and CI runs as root, so each helper says how
it gets a real fault under root and skips the test, saying why, where it cannot:

- ``drop_dac_override``: a ``preexec_fn`` that removes the capabilities that let root ignore
  permission bits from the child's bounding set, so a 0555 directory refuses root's writes too.
- ``read_only_bind``: a read-only bind mount (EROFS, for root as well); needs CAP_SYS_ADMIN.
- ``tiny_tmpfs``: a tmpfs of a few hundred KiB that ``fill`` fills up (ENOSPC); needs mounting.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

_PR_CAPBSET_DROP = 24
_DAC_CAPS = (1, 2, 3)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER


def drop_dac_override() -> None:
    """preexec_fn: root's child keeps uid 0 but obeys permission bits (bounding set, so exec)."""
    if os.geteuid() != 0:
        return  # permission bits apply already
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in _DAC_CAPS:
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


@contextmanager
def unwritable(directory: Path) -> Iterator[None]:
    """Make ``directory`` and its files non-writable (0555 / 0444) for a ``drop_dac_override``
    child; skip when such a child can still write there."""
    modes = {p: p.stat().st_mode for p in [directory, *directory.iterdir()]}
    for path in modes:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        probe = directory / "probe"
        try:
            result = subprocess.run(
                [sys.executable, "-c", f"open({str(probe)!r}, 'w')"],
                preexec_fn=drop_dac_override,
                capture_output=True,
                text=True,
                check=False,
            )
        except subprocess.SubprocessError as exc:  # prctl refused: no CAP_SETPCAP here
            pytest.skip(f"cannot start a child without CAP_DAC_OVERRIDE: {exc}")
        if result.returncode == 0:
            probe.unlink()
            pytest.skip(f"a child could still write to a 0555 directory: {result.stderr[-200:]}")
        if "PermissionError" not in result.stderr:
            pytest.skip(f"cannot run a child without CAP_DAC_OVERRIDE: {result.stderr[-300:]}")
        yield
    finally:
        for path, mode in modes.items():
            path.chmod(mode)


def _mount(args: list[str], what: str) -> None:
    if os.geteuid() != 0:
        pytest.skip(f"{what} needs root to mount (running as uid {os.geteuid()})")
    if shutil.which("mount") is None:
        pytest.skip(f"{what}: no mount command here")
    result = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.skip(f"{what}: mounting is not permitted here ({result.stderr.strip()})")


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


@contextmanager
def read_only_bind(directory: Path) -> Iterator[None]:
    """Mount ``directory`` read-only over itself (EROFS for everyone, root included)."""
    _mount(["--bind", "-o", "ro", str(directory), str(directory)], "a read-only bind mount")
    try:
        try:
            (directory / "probe").touch()
        except OSError as exc:
            if exc.errno != errno.EROFS:
                raise
        else:
            pytest.skip("the bind mount did not come up read-only (mount ignored -o ro)")
        yield
    finally:
        _umount(directory)


@contextmanager
def tiny_tmpfs(directory: Path, size_kib: int) -> Iterator[Path]:
    """Mount a tmpfs of ``size_kib`` KiB on ``directory`` (created) for the block."""
    directory.mkdir(parents=True, exist_ok=True)
    _mount(["-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(directory)], "a tiny tmpfs")
    try:
        yield directory
    finally:
        _umount(directory)


def fill(directory: Path) -> Path:
    """Write a file in ``directory`` until its file system is full; return it (ENOSPC reached)."""
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as out:
        chunk = b"\0" * 4096
        try:
            while True:
                out.write(chunk)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
    return filler
