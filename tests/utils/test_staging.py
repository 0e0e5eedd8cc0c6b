"""Staging entries of killed writers are removed; a live writer's never is (promise 22)."""

from __future__ import annotations

import errno
import fcntl
import os
import time
from pathlib import Path
from typing import Any

import pytest

from retail_forecast.utils import staging
from retail_forecast.utils.staging import hold_staging_lock, remove_stale_staging


def _entry(root: Path, name: str, *, age_s: float, is_dir: bool = True) -> Path:
    path = root / name
    if is_dir:
        path.mkdir(parents=True)
        (path / "xgboost").mkdir()
        (path / "xgboost" / "model.ubj").write_bytes(b"{}")
    else:
        path.write_bytes(b"partial download")
    when = time.time() - age_s
    for item in [path, *path.rglob("*")]:
        os.utime(item, (when, when))
    return path


def test_p22_stale_staging_from_a_killed_writer_is_removed(tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    dead = _entry(root, ".staging-dead", age_s=3600)
    tarball = _entry(root, ".staging-dl.tar.gz", age_s=3600, is_dir=False)
    fresh = _entry(root, ".staging-fresh", age_s=0)  # between a writer's mkdir and its lock
    live = _entry(root, ".staging-live", age_s=3 * 24 * 3600)
    version = _entry(root, "20261126t203000-0123abcd", age_s=3 * 24 * 3600)
    fd = hold_staging_lock(live)
    assert fd is not None
    try:
        removed = remove_stale_staging(root)
    finally:
        os.close(fd)
    assert sorted(removed) == sorted([dead, tarball])
    assert not dead.exists()
    assert not tarball.exists()
    assert fresh.exists()
    assert (live / "xgboost" / "model.ubj").exists()  # locked: a live writer, however old
    assert version.exists()
    assert remove_stale_staging(root) == [live]  # its writer has gone


def test_p22_recent_change_deep_inside_keeps_an_unlocked_entry(tmp_path: Path) -> None:
    """An unlocked writer (a download) still adding files is not removed."""
    entry = _entry(tmp_path, ".staging-download", age_s=3600)
    (entry / "xgboost" / "model.ubj").touch()
    assert remove_stale_staging(tmp_path) == []
    assert entry.exists()


def test_p22_a_symlink_named_like_staging_is_never_followed(tmp_path: Path) -> None:
    outside = _entry(tmp_path, "outside", age_s=3600)
    root = tmp_path / "artifacts"
    root.mkdir()
    (root / ".staging-link").symlink_to(outside)
    assert remove_stale_staging(root) == []
    assert (outside / "xgboost" / "model.ubj").exists()


def test_p22_without_flock_only_entries_idle_for_a_day_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_flock(fd: Any, operation: int) -> None:
        raise OSError(errno.ENOLCK, "no locks available")

    monkeypatch.setattr(staging.fcntl, "flock", no_flock)
    hour = _entry(tmp_path, ".staging-hour", age_s=3600)
    days = _entry(tmp_path, ".staging-days", age_s=2 * 24 * 3600)
    assert hold_staging_lock(tmp_path / ".staging-hour") is None
    assert remove_stale_staging(tmp_path) == [days]
    assert hour.exists()


def test_the_lock_is_exclusive_between_descriptors(tmp_path: Path) -> None:
    entry = _entry(tmp_path, ".staging-x", age_s=0)
    fd = hold_staging_lock(entry)
    assert fd is not None
    other = os.open(entry, os.O_RDONLY)
    try:
        with pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(other)
        os.close(fd)
