"""ModelBundle: write, verify and read a bundle directory.

Layout (docs/DESIGN.md, section 4)::

    <root>/<version>/manifest.json      written last; sha256 + size of every other file
    <root>/<version>/xgboost/model.ubj, lstm/weights.safetensors, config.json, ...
    <root>/current                      text file naming the serving version

Version names are ``<UTC yyyymmdd>t<hhmmss>-<fingerprint[:8]>`` with a lowercase ``t`` (e.g.
``20261126t203000-1a2b3c4d``) so that every version matches ``VERSION_PATTERN``
(``^[a-z0-9][a-z0-9_-]{0,63}$``, docs/RELIABILITY.md, promise 13).

Writing goes through :class:`BundleWriter`: models save into a private staging directory
``<root>/.staging-<uuid>/``; on success every file is hashed and fsynced, ``manifest.json`` is
written last, and the staging directory is renamed to ``<root>/<version>`` in one step. A version
directory therefore either does not exist or is complete (promise 22). Publishing a version that
already exists does nothing (promise 23). A writer holds an exclusive ``flock`` on its staging
directory for its whole life, so the next writer can tell a killed writer's leftovers (nobody
holds them) from a live writer's, and removes only the former when it starts. Every bundle file
is made ``0600``, whatever wrote it.

Reading goes through :func:`verify_bundle` (or :meth:`ModelBundle.open`): ``schema_version``,
``model_type`` and the size, sha256 and content type of every listed file are checked before
any model deserializer runs (promises 11 and 12). Files that the manifest does not list are
never opened; by default they are ignored with a warning (issue 4: "ignores files not in the
manifest"), and ``allow_unlisted=False`` refuses them instead (promise 12's strict reading).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import logging
import os
import re
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

import pandas as pd

from retail_forecast.errors import ArtifactError, UnknownVersionError
from retail_forecast.manifest import (
    FileEntry,
    Manifest,
    check_bundle_member,
    content_problem,
    git_sha,
    library_versions,
    parse_manifest_bytes,
    unlisted_files,
    verify_member,
)
from retail_forecast.utils.io import fsync_dir, sha256_file, write_json_atomic, write_text_atomic
from retail_forecast.utils.staging import STAGING_PREFIX as STAGING_PREFIX  # aws/s3.py uses it
from retail_forecast.utils.staging import hold_staging_lock, remove_stale_staging

logger = logging.getLogger(__name__)

MANIFEST: Final = "manifest.json"
CURRENT: Final = "current"
VERSION_PATTERN: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
FINGERPRINT_PATTERN: Final = re.compile(r"[0-9a-f]{8,128}")
MAX_MANIFEST_BYTES: Final = 16 * 1024 * 1024
MAX_POINTER_BYTES: Final = 256
FILE_MODE: Final = 0o600


def make_version(created_at: dt.datetime, fingerprint: str) -> str:
    """Return ``<yyyymmdd>t<hhmmss>-<fingerprint[:8]>`` for a UTC time and a hex fingerprint."""
    if not FINGERPRINT_PATTERN.fullmatch(fingerprint):
        raise ArtifactError(f"data fingerprint must be 8-128 lowercase hex chars: {fingerprint!r}")
    utc = created_at.astimezone(dt.UTC) if created_at.tzinfo else created_at
    return f"{utc:%Y%m%d}t{utc:%H%M%S}-{fingerprint[:8]}"


# -- versions and the `current` pointer ------------------------------------------------------


def _is_published(path: Path) -> bool:
    return path.is_dir() and (path / MANIFEST).is_file()


def list_versions(root: Path) -> list[str]:
    """List published versions under ``root`` (valid name and a manifest), oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    # Published versions are directories renamed into place, never symlinks: a symlink could
    # point outside the model root, so it is not a version.
    return sorted(
        entry.name
        for entry in root.iterdir()
        if VERSION_PATTERN.fullmatch(entry.name) and not entry.is_symlink() and _is_published(entry)
    )


def _checked_path(root: Path, name: str) -> Path:
    """``root/name`` for a valid, published version name; raises UnknownVersionError."""
    shown = name[:80]
    if not VERSION_PATTERN.fullmatch(name):
        raise UnknownVersionError(f"invalid model version name {shown!r}")
    root_resolved = Path(root).resolve()
    path = (root_resolved / name).resolve()
    if not path.is_relative_to(root_resolved):
        raise UnknownVersionError(f"model version {shown!r} resolves outside the model root")
    if name not in list_versions(root_resolved):
        raise UnknownVersionError(f"unknown model version {shown!r}")
    return path


def resolve_version(root: Path, version: str) -> Path:
    """Directory of a published version; names never become paths unchecked (promise 13)."""
    return _checked_path(root, version)


def resolve_current(root: Path) -> Path:
    """Directory of the version named by ``root/current``; ArtifactError if it is unusable."""
    pointer = Path(root) / CURRENT
    try:
        with pointer.open("rb") as fh:
            raw = fh.read(MAX_POINTER_BYTES + 1)
    except FileNotFoundError:
        raise ArtifactError(f"no serving version: {pointer} does not exist") from None
    if len(raw) > MAX_POINTER_BYTES:
        raise ArtifactError(f"{pointer} is larger than {MAX_POINTER_BYTES} bytes")
    try:
        return _checked_path(root, raw.decode("ascii").strip())
    except (UnicodeDecodeError, UnknownVersionError) as exc:
        raise ArtifactError(f"{pointer} does not name a published version: {exc}") from None


def set_current(root: Path, version: str) -> None:
    """Point ``root/current`` at a published version, atomically (promise 22).

    Does not write when the pointer already names ``version``.
    """
    _checked_path(root, version)
    pointer = Path(root) / CURRENT
    with contextlib.suppress(OSError):
        if pointer.read_bytes() == f"{version}\n".encode():
            return
    write_text_atomic(pointer, version + "\n")
    logger.info("current version set root=%s version=%s", root, version)


# -- reading ---------------------------------------------------------------------------------


def load_manifest(bundle_dir: Path) -> Manifest:
    """Parse and check ``manifest.json`` (schema, model type, file names); hashes nothing."""
    path = Path(bundle_dir) / MANIFEST
    if path.is_symlink() or not path.is_file():
        raise ArtifactError(f"{path}: missing or not a regular file (no manifest, no bundle)")
    with path.open("rb") as fh:
        raw = fh.read(MAX_MANIFEST_BYTES + 1)
    if len(raw) > MAX_MANIFEST_BYTES:
        raise ArtifactError(f"{path}: larger than {MAX_MANIFEST_BYTES} bytes")
    manifest = parse_manifest_bytes(raw, source=str(path))
    if not VERSION_PATTERN.fullmatch(manifest.version):
        raise ArtifactError(f"{path}: invalid version {manifest.version[:80]!r}")
    return manifest


def verify_bundle(bundle_dir: Path, *, allow_unlisted: bool = True) -> Manifest:
    """Check a bundle before anything deserializes it; raise ArtifactError naming the file.

    Refused: a missing manifest, a wrong ``schema_version`` or ``model_type``, a listed file
    that is missing, has another size or sha256, has an extension outside the allow-list, does
    not look like its format (a pickle or a zip such as a torch ``.pt`` is refused whatever its
    extension), or whose path escapes the bundle (absolute, ``..``, symlink outside). Files not
    in the manifest are never opened: logged and ignored, or refused if ``allow_unlisted`` is
    False.
    """
    bundle_dir = Path(bundle_dir)
    if not bundle_dir.is_dir():
        raise ArtifactError(f"{bundle_dir}: bundle directory does not exist")
    manifest = load_manifest(bundle_dir)
    root = bundle_dir.resolve()
    for name, entry in manifest.files.items():
        verify_member(root, name, entry)
    unlisted = unlisted_files(root, set(manifest.files))
    if unlisted and not allow_unlisted:
        raise ArtifactError(f"{bundle_dir}: files not in the manifest: {unlisted[:10]}")
    if unlisted:
        logger.warning("ignoring files not in the manifest bundle=%s files=%s", root, unlisted)
    logger.info("bundle verified version=%s files=%d", manifest.version, len(manifest.files))
    return manifest


class ModelBundle:
    """A verified bundle: only files listed in its manifest can be reached through it."""

    def __init__(self, path: Path, manifest: Manifest) -> None:
        self.path = path
        self.manifest = manifest

    @classmethod
    def open(cls, bundle_dir: Path, *, allow_unlisted: bool = True) -> Self:
        """Verify ``bundle_dir`` (see :func:`verify_bundle`) and return it."""
        manifest = verify_bundle(bundle_dir, allow_unlisted=allow_unlisted)
        return cls(Path(bundle_dir).resolve(), manifest)

    @classmethod
    def open_current(cls, root: Path, *, allow_unlisted: bool = True) -> Self:
        """Verify and return the version that ``root/current`` names."""
        return cls.open(resolve_current(root), allow_unlisted=allow_unlisted)

    @property
    def version(self) -> str:
        return self.manifest.version

    def has(self, name: str) -> bool:
        return name in self.manifest.files

    def path_of(self, name: str) -> Path:
        """Path of a listed file; ArtifactError for anything the manifest does not list."""
        if name not in self.manifest.files:
            raise ArtifactError(f"{self.path}: {name!r} is not listed in the manifest")
        return self.path / name

    def read_bytes(self, name: str) -> bytes:
        """Contents of a listed file, re-checked against its sha256 after reading."""
        data = self.path_of(name).read_bytes()
        if hashlib.sha256(data).hexdigest() != self.manifest.files[name].sha256:
            raise ArtifactError(f"{self.path / name}: changed since the bundle was verified")
        return data

    def read_json(self, name: str) -> Any:
        return json.loads(self.read_bytes(name))

    def read_parquet(self, name: str) -> pd.DataFrame:
        return pd.read_parquet(io.BytesIO(self.read_bytes(name)))


# -- writing ---------------------------------------------------------------------------------


def _inventory(staging: Path) -> dict[str, FileEntry]:
    """Check, fsync and hash every file under ``staging``; refuse what a loader would refuse."""
    files: dict[str, FileEntry] = {}
    for dirpath, dirnames, filenames in os.walk(staging):
        base = Path(dirpath)
        for name in sorted([*dirnames, *filenames]):
            path = base / name
            rel = path.relative_to(staging).as_posix()
            if path.is_symlink():
                raise ArtifactError(f"{rel}: symlinks are not allowed in a bundle")
            if name in dirnames:
                continue
            check_bundle_member(rel, source=str(staging))
            problem = content_problem(path)
            if problem is not None:
                raise ArtifactError(f"{rel}: refused, {problem}")
            path.chmod(FILE_MODE)  # whatever wrote it (a library may honour the umask)
            with path.open("rb") as fh:
                os.fsync(fh.fileno())
            files[rel] = FileEntry(sha256=sha256_file(path), size=path.stat().st_size)
        fsync_dir(base)
    return files


class BundleWriter:
    """Stage a bundle and publish it atomically; use as a context manager.

    ``with BundleWriter(root, fingerprint=fp, metadata={...}) as writer:`` gives
    ``writer.directory`` (``root/.staging-<uuid>/``), where models ``save`` their files. A clean
    exit publishes ``root/<version>`` (``writer.version``, ``writer.path``) and, unless
    ``make_current`` is False, points ``root/current`` at it. An exception removes the staging
    directory and publishes nothing. ``metadata`` (train window, feature names, horizon, blend
    weights, metrics summary, domain, ...) goes into the manifest as given; ``config`` and
    ``metrics`` are written as ``config.json`` and ``metrics.json``.
    """

    def __init__(
        self,
        root: Path,
        *,
        fingerprint: str,
        metadata: Mapping[str, Any] | None = None,
        config: Mapping[str, Any] | None = None,
        metrics: Mapping[str, Any] | None = None,
        version: str | None = None,
        created_at: dt.datetime | None = None,
        make_current: bool = True,
    ) -> None:
        self.root = Path(root)
        self.fingerprint = fingerprint
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.config = config
        self.metrics = metrics
        self.version = version
        self.created_at = created_at
        self.make_current = make_current
        self.path: Path | None = None
        self.is_published_now = False
        self._staging: Path | None = None
        self._lock_fd: int | None = None

    @property
    def directory(self) -> Path:
        """The staging directory models write into (only inside the ``with`` block)."""
        if self._staging is None:
            raise ArtifactError("BundleWriter.directory is only available inside `with`")
        return self._staging

    def __enter__(self) -> Self:
        make_version(dt.datetime.now(dt.UTC), self.fingerprint)  # fail before any work
        if self.version is not None and not VERSION_PATTERN.fullmatch(self.version):
            raise ArtifactError(f"invalid version name {self.version[:80]!r}")
        self.root.mkdir(parents=True, exist_ok=True)
        remove_stale_staging(self.root)  # what killed writers left (promise 22)
        self._staging = self.root / f"{STAGING_PREFIX}{uuid.uuid4().hex}"
        self._staging.mkdir(mode=0o700)
        self._lock_fd = hold_staging_lock(self._staging)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        staging = self.directory
        try:
            if exc_type is None:
                self._commit(staging)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            self._staging = None
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # after the rename or the removal: never unlocked early
                self._lock_fd = None

    def write_json(self, name: str, obj: Any) -> Path:
        """Write a JSON file into the staging directory (atomically)."""
        path = self.directory / name
        write_json_atomic(path, obj)
        return path

    def _manifest(self, files: dict[str, FileEntry], created: dt.datetime) -> Manifest:
        version = self.version or make_version(created, self.fingerprint)
        return Manifest(
            version=version,
            created_at=created.isoformat().replace("+00:00", "Z"),
            data_fingerprint=self.fingerprint,
            files=files,
            metadata=self.metadata,
            library_versions=library_versions(),
            git_sha=git_sha(),
        )

    def _commit(self, staging: Path) -> None:
        if self.config is not None:
            write_json_atomic(staging / "config.json", dict(self.config))
        if self.metrics is not None:
            write_json_atomic(staging / "metrics.json", dict(self.metrics))
        created = (self.created_at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
        manifest = self._manifest(_inventory(staging), created)
        target = self.root / manifest.version
        self.version, self.path = manifest.version, target
        if _is_published(target):
            logger.info("version already published, nothing to do version=%s", manifest.version)
            if self.make_current:  # a rerun after a crash between publish and pointer swap
                set_current(self.root, manifest.version)
            return
        write_json_atomic(staging / MANIFEST, manifest.to_dict())  # last file of the bundle
        try:
            staging.rename(target)
        except OSError as exc:
            if _is_published(target):  # a concurrent writer published the same version
                logger.info("version published concurrently version=%s", manifest.version)
                return
            raise ArtifactError(f"{target}: cannot publish ({exc})") from exc
        fsync_dir(self.root)
        self.is_published_now = True
        logger.info("bundle published version=%s files=%d", manifest.version, len(manifest.files))
        if self.make_current:
            set_current(self.root, manifest.version)
