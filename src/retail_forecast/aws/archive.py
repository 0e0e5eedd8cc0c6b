"""Deterministic tar.gz packing and safe extraction (no absolute paths, no '..', no links).

Member names follow the bundle's rule (:func:`retail_forecast.manifest.check_member_name`).
"""

from __future__ import annotations

import gzip
import logging
import tarfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from retail_forecast.errors import ArtifactError
from retail_forecast.manifest import check_member_name
from retail_forecast.utils.io import atomic_path

logger = logging.getLogger(__name__)

# Same input files -> byte-identical archive: sorted names, fixed mtimes/owners/modes, and a
# gzip header without a name or timestamp.
FIXED_MTIME: Final = 946_684_800  # 2000-01-01T00:00:00Z
FILE_MODE: Final = 0o644
MAX_EXTRACT_BYTES: Final = 8 * 1024**3


def write_tar_gz(members: Mapping[str, Path], dest: Path) -> Path:
    """Write ``members`` (archive name -> local file) to ``dest`` atomically, deterministically."""
    for name in members:
        check_member_name(name, source="archive member")
    with (
        atomic_path(Path(dest)) as tmp,
        tmp.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for name in sorted(members):
            path = Path(members[name])
            info = tarfile.TarInfo(name)
            info.size = path.stat().st_size
            info.mtime = FIXED_MTIME
            info.mode = FILE_MODE
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with path.open("rb") as fh:
                tar.addfile(info, fh)
    logger.debug("packed %d files into %s", len(members), dest)
    return Path(dest)


def _checked_members(tar: tarfile.TarFile, *, source: str, max_bytes: int) -> None:
    total = 0
    for member in tar.getmembers():
        check_member_name(
            member.name.removesuffix("/") if member.isdir() else member.name, source=source
        )
        if not (member.isfile() or member.isdir()):
            raise ArtifactError(f"{source}: {member.name[:120]!r} is a link or special file")
        total += member.size
        if total > max_bytes:
            raise ArtifactError(f"{source}: archive expands beyond {max_bytes} bytes")


def safe_extract(archive: Path, dest: Path, *, max_bytes: int = MAX_EXTRACT_BYTES) -> list[str]:
    """Extract a tar.gz into ``dest`` after checking every member; return the file names.

    Refused (ArtifactError, nothing extracted): absolute names, ``..``, links, devices, a
    corrupt or truncated archive, more than ``max_bytes`` in total. Extraction also uses
    tarfile's ``data`` filter as a second line of defence.
    """
    source = str(archive)
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            _checked_members(tar, source=source, max_bytes=max_bytes)
            Path(dest).mkdir(parents=True, exist_ok=True)
            tar.extractall(dest, filter="data")
            return sorted(m.name for m in tar.getmembers() if m.isfile())
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise ArtifactError(f"{source}: unreadable archive ({exc})") from exc
