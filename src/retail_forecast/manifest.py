"""Manifest of a model bundle: its schema, member-name rules and content sniffing.

The member-name rule (:func:`check_member_name`) is also the rule of tar archives and data
set markers (:mod:`retail_forecast.aws`).
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any, Final, NoReturn, Self

from retail_forecast.errors import ArtifactError
from retail_forecast.utils.io import sha256_file
from retail_forecast.utils.strict_json import loads_strict

SCHEMA_VERSION: Final = 1
MODEL_TYPE: Final = "retail_forecast-hybrid"
ALLOWED_SUFFIXES: Final = frozenset({".json", ".ubj", ".safetensors", ".parquet"})
MEMBER_PATTERN: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*")
SHA256_PATTERN: Final = re.compile(r"[0-9a-f]{64}")
_SNIFF_BYTES: Final = 64
_PICKLE_PROTOCOLS: Final = range(2, 6)
_ZIP_MAGIC: Final = (b"PK\x03\x04", b"PK\x05\x06")
_PARQUET_MAGIC: Final = b"PAR1"
_DISTRIBUTIONS: Final = {
    "numpy": ("numpy",),
    "pandas": ("pandas",),
    "pyarrow": ("pyarrow",),
    "xgboost": ("xgboost", "xgboost-cpu"),
    "torch": ("torch",),
    "safetensors": ("safetensors",),
    "retail_forecast": ("retail-forecast",),
}


@dataclasses.dataclass(frozen=True)
class FileEntry:
    """Size and sha256 of one bundle member."""

    sha256: str
    size: int


@dataclasses.dataclass(frozen=True)
class Manifest:
    """The parsed ``manifest.json``; ``metadata`` holds what the training pipeline recorded."""

    version: str
    created_at: str
    data_fingerprint: str
    files: Mapping[str, FileEntry]
    metadata: Mapping[str, Any]
    library_versions: Mapping[str, str]
    git_sha: str | None
    schema_version: int = SCHEMA_VERSION
    model_type: str = MODEL_TYPE

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "model_type": self.model_type,
            "version": self.version,
            "created_at": self.created_at,
            "data_fingerprint": self.data_fingerprint,
            "git_sha": self.git_sha,
            "library_versions": dict(self.library_versions),
            "metadata": dict(self.metadata),
            "files": {
                name: {"sha256": entry.sha256, "size": entry.size}
                for name, entry in sorted(self.files.items())
            },
        }

    @classmethod
    def from_dict(cls, raw: Any, *, source: str) -> Self:
        """Build from parsed JSON, checking every field; ArtifactError names ``source``."""
        if not isinstance(raw, dict):
            _fail(source, "manifest is not a JSON object")
        schema_version = raw.get("schema_version")
        if type(schema_version) is not int or schema_version != SCHEMA_VERSION:
            _fail(source, f"schema_version {schema_version!r} != supported {SCHEMA_VERSION}")
        if raw.get("model_type") != MODEL_TYPE:
            _fail(source, f"model_type {raw.get('model_type')!r} != {MODEL_TYPE!r}")
        git_sha = raw.get("git_sha")
        if git_sha is not None and not isinstance(git_sha, str):
            _fail(source, "git_sha must be a string or null")
        return cls(
            version=_require(raw, "version", str, source),
            created_at=_require(raw, "created_at", str, source),
            data_fingerprint=_require(raw, "data_fingerprint", str, source),
            files=_parse_files(_require(raw, "files", dict, source), source),
            metadata=_require(raw, "metadata", dict, source),
            library_versions=_require(raw, "library_versions", dict, source),
            git_sha=git_sha,
        )


def _fail(source: str, reason: str) -> NoReturn:
    raise ArtifactError(f"{source}: {reason}")


def _require(raw: Mapping[str, Any], key: str, kind: type, source: str) -> Any:
    value = raw.get(key)
    if not isinstance(value, kind):
        _fail(source, f"field {key!r} must be a {kind.__name__}, got {type(value).__name__}")
    return value


def _parse_files(raw: Mapping[str, Any], source: str) -> dict[str, FileEntry]:
    files: dict[str, FileEntry] = {}
    for name, entry in raw.items():
        check_bundle_member(name, source=source)
        if not isinstance(entry, dict):
            _fail(source, f"files[{name!r}] must be an object")
        sha, size = entry.get("sha256"), entry.get("size")
        if not isinstance(sha, str) or not SHA256_PATTERN.fullmatch(sha):
            _fail(source, f"files[{name!r}].sha256 is not 64 lowercase hex chars")
        if type(size) is not int or size < 0:
            _fail(source, f"files[{name!r}].size must be a non-negative integer")
        files[name] = FileEntry(sha256=sha, size=size)
    return files


def check_member_name(name: str, *, source: str) -> None:
    """Refuse a member name that could escape its directory: of a bundle, archive or data set.

    A name is a relative POSIX path of ``[A-Za-z0-9_.-]`` parts, none starting with a dot: so no
    absolute path, no ``..`` or ``.``, no empty part, backslash or NUL, no hidden or temporary
    file. Bundles add their own rules (:func:`check_bundle_member`).
    """
    if not isinstance(name, str) or not MEMBER_PATTERN.fullmatch(name):
        shown = name[:120] if isinstance(name, str) else repr(name)
        _fail(source, f"unsafe file name {shown!r} (absolute, '..', or odd characters)")


def check_bundle_member(name: str, *, source: str) -> None:
    """Refuse a name a bundle's manifest may not list: unsafe, ``manifest.json``, no loader.

    :func:`check_member_name` first; then the extension must be one a loader reads.
    """
    check_member_name(name, source=source)
    if name == "manifest.json":
        _fail(source, "manifest.json cannot list itself")
    suffix = PurePosixPath(name).suffix
    if suffix not in ALLOWED_SUFFIXES:
        _fail(source, f"{name[:120]!r}: extension {suffix!r} not in {sorted(ALLOWED_SUFFIXES)}")


def _looks_like_pickle(head: bytes) -> bool:
    return len(head) >= 2 and head[0] == 0x80 and head[1] in _PICKLE_PROTOCOLS


def _safetensors_problem(head: bytes, size: int) -> str | None:
    # 8-byte little-endian header length, then a JSON header; a pickle's first bytes can look
    # like a length whose low byte is 0x80, so the structure decides, not the first byte.
    header_len = int.from_bytes(head[:8], "little") if len(head) >= 8 else -1
    if 0 < header_len <= size - 8 and head[8:9] == b"{":
        return None
    if _looks_like_pickle(head):
        return "starts with a pickle header"
    return "not a safetensors file (bad header)"


def _format_problem(suffix: str, head: bytes, tail: bytes, size: int) -> str | None:
    if suffix == ".safetensors":
        return _safetensors_problem(head, size)
    if suffix == ".json" and not head.lstrip(b" \t\r\n").startswith((b"{", b"[")):
        return "not a JSON object or array"
    if suffix == ".ubj" and not head.startswith(b"{"):
        return "not a UBJSON object (XGBoost save_model)"
    if suffix == ".parquet" and not (
        size >= 8 and head.startswith(_PARQUET_MAGIC) and tail == _PARQUET_MAGIC
    ):
        return "not a parquet file (PAR1 magic missing)"
    return None


def content_problem(path: Path) -> str | None:
    """Say why ``path``'s bytes do not match its extension's format; None when they do.

    Only the first bytes and the last four are read. Pickles (byte 0x80 + protocol byte) and
    zip archives (``torch.save``) are refused whatever the extension.
    """
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(_SNIFF_BYTES)
        fh.seek(max(size - 4, 0))
        tail = fh.read(4)
    suffix = path.suffix
    if suffix != ".safetensors" and _looks_like_pickle(head):
        return "starts with a pickle header"
    if head.startswith(_ZIP_MAGIC):
        return "is a zip archive (torch.save / .pt format)"
    if suffix not in ALLOWED_SUFFIXES:
        return f"extension {suffix!r} not in {sorted(ALLOWED_SUFFIXES)}"
    return _format_problem(suffix, head, tail, size)


def verify_member(root: Path, name: str, entry: FileEntry) -> None:
    """Check one listed file: inside ``root``, regular, same size and sha256, right format."""
    path = root / name
    if not os.path.lexists(path):
        raise ArtifactError(f"{path}: listed in the manifest but missing")
    resolved = path.resolve()
    if not resolved.is_relative_to(root):
        raise ArtifactError(f"{path}: resolves outside the bundle ({resolved})")
    if not resolved.is_file():
        raise ArtifactError(f"{path}: not a regular file")
    size = resolved.stat().st_size
    if size != entry.size:
        raise ArtifactError(f"{path}: size {size} != {entry.size} in the manifest (truncated?)")
    digest = sha256_file(resolved)
    if digest != entry.sha256:
        raise ArtifactError(f"{path}: sha256 {digest[:12]}… != {entry.sha256[:12]}… (modified)")
    problem = content_problem(resolved)
    if problem is not None:
        raise ArtifactError(f"{path}: refused, {problem}")


def unlisted_files(root: Path, listed: set[str]) -> list[str]:
    """Relative names of files under ``root`` that are not listed (never opened)."""
    listed = listed | {"manifest.json"}
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        base = Path(dirpath)
        found.extend(
            rel
            for rel in ((base / f).relative_to(root).as_posix() for f in sorted(filenames))
            if rel not in listed
        )
    return found


def parse_manifest_bytes(raw: bytes, *, source: str) -> Manifest:
    """Parse manifest JSON strictly (no NaN, no duplicate keys) and check its schema."""
    try:
        parsed = loads_strict(raw)
    except ValueError as exc:  # StrictJsonError, JSONDecodeError, an oversized integer
        raise ArtifactError(f"{source}: invalid JSON ({exc})") from None
    return Manifest.from_dict(parsed, source=source)


def library_versions() -> dict[str, str]:
    """Versions of python and of the libraries a bundle depends on (without importing them)."""
    versions = {"python": sys.version.split()[0]}
    for key, names in _DISTRIBUTIONS.items():
        for name in names:
            try:
                versions[key] = importlib.metadata.version(name)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    return versions


def git_sha() -> str | None:
    """Return the checkout's HEAD commit, or None outside a git checkout."""
    git = shutil.which("git")
    if git is None:
        return None
    try:
        done = subprocess.run(  # noqa: S603 - fixed argv, no shell, no user input
            [git, "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    sha = done.stdout.strip()
    return sha if re.fullmatch(r"[0-9a-f]{40}", sha) else None
