"""Staging entries: a live writer's lock, and the removal of what killed writers left.

A writer stages its output in ``<root>/.staging-<uuid>`` and renames it into place when done
(promise 22). A writer killed on the way leaves its staging entry behind. Each writer holds an
exclusive ``flock`` on its staging directory for its whole life; the kernel drops the lock of a
killed process, so the next writer removes exactly the entries nobody holds, and never a live
writer's, however long it has been running.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Final

logger = logging.getLogger(__name__)

STAGING_PREFIX: Final = ".staging-"
# An entry nobody holds is a killed writer's only once it has not changed for this long: it
# covers the moment between a writer's mkdir and its flock, and writers that take no lock
# (downloads into an artifacts cache, whose reads retry a stall of up to 70 s).
STAGING_IDLE_S: Final = 300.0
# Where flock is not supported (some network file systems) a live writer cannot be told from a
# dead one; there only entries unchanged for a day are removed.
STAGING_UNLOCKABLE_S: Final = 24 * 3600.0


def hold_staging_lock(path: Path) -> int | None:
    """Open ``path`` and take an exclusive flock on it: the mark of a live writer.

    Returns the descriptor, to be closed when the writer is done (the kernel drops the lock of
    a killed process); None where the file system does not support flock.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        logger.warning("cannot lock the staging directory %s (%s)", path, exc)
        return None
    return fd


def _last_change(entry: Path) -> float:
    """Newest mtime of ``entry`` and everything under it (staging trees are a few files)."""
    newest = entry.lstat().st_mtime
    if entry.is_dir():
        for dirpath, _dirs, files in os.walk(entry):
            for name in [".", *files]:
                with contextlib.suppress(OSError):
                    newest = max(newest, (Path(dirpath) / name).lstat().st_mtime)
    return newest


def _remove_if_stale(entry: Path, older_than_s: float) -> bool:
    """Remove one staging entry if no writer holds it and it is idle; True if removed."""
    try:
        fd = os.open(entry, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False  # gone already, or a symlink: never followed
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a live writer holds it
        except OSError:
            older_than_s = max(older_than_s, STAGING_UNLOCKABLE_S)  # cannot tell: wait a day
        if _last_change(entry) > time.time() - older_than_s:
            return False
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
    finally:
        os.close(fd)
    logger.warning("removed stale staging entry of a killed writer %s", entry)
    return True


def remove_stale_staging(root: Path, *, older_than_s: float = STAGING_IDLE_S) -> list[Path]:
    """Delete what killed writers left in ``root`` (never visible as versions); return it.

    An entry ``.staging-*`` goes when no process holds its lock and nothing in it changed for
    ``older_than_s``; a live writer's staging directory is never touched, however old.
    """
    root = Path(root)
    if not root.is_dir():
        return []
    candidates = [entry for entry in root.iterdir() if entry.name.startswith(STAGING_PREFIX)]
    return [entry for entry in candidates if _remove_if_stale(entry, older_than_s)]
