"""Model bundles on S3: model.tar.gz under a new version prefix, manifest.json last, a pointer.

Layout under ``s3://<bucket>/<prefix>/``::

    models/<version>/model.tar.gz    the bundle directory, packed deterministically
    models/<version>/manifest.json   written LAST, with If-None-Match: * (sha256 + size of the
                                     tarball); a version without it does not exist for readers
    models/current                   text naming the serving version, written after the manifest

Readers resolve a version only through its manifest (docs/RELIABILITY.md, promise 22), check the
tarball's sha256 against it, extract safely and run :func:`verify_bundle` before anything loads.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from retail_forecast.artifacts import (
    MANIFEST,
    STAGING_PREFIX,
    VERSION_PATTERN,
    set_current,
    verify_bundle,
)
from retail_forecast.aws.archive import safe_extract, write_tar_gz
from retail_forecast.aws.env import is_s3_uri, join_key, make_s3_client, parse_s3_uri
from retail_forecast.config import AwsConfig
from retail_forecast.errors import ArtifactError
from retail_forecast.utils.io import fsync_dir, sha256_file

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

TARBALL: Final = "model.tar.gz"
POINTER: Final = "current"
MODELS: Final = "models"
RELEASE_FORMAT: Final = "retail_forecast-s3-release"
MAX_SMALL_OBJECT: Final = 16 * 1024 * 1024
_MISSING_CODES: Final = frozenset({"NoSuchKey", "404", "NotFound"})
_PRECONDITION_CODES: Final = frozenset({"PreconditionFailed", "412"})
_READ_CHUNK: Final = 1 << 20


@dataclass(frozen=True)
class PublishedBundle:
    """Where a bundle version lives on S3, and whether this call published it."""

    version: str
    uri: str
    sha256: str
    size: int
    is_new: bool


@contextlib.contextmanager
def s3_errors(action: str) -> Iterator[None]:
    """Turn boto errors into ArtifactError naming the action and the S3 error code."""
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = error.get("Code", "?")
        attempts = exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)
        message = error.get("Message", "")
        raise ArtifactError(
            f"{action}: S3 error {code} ({message}) after {attempts + 1} attempt(s)"
        ) from exc
    except BotoCoreError as exc:
        raise ArtifactError(f"{action}: {exc}") from exc


def error_code(exc: ClientError) -> str:
    """Return the S3 error code of a ClientError ("NoSuchKey", "PreconditionFailed", ...)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def get_small_object(client: S3Client, bucket: str, key: str) -> bytes | None:
    """Body of a small object, or None when it does not exist; other errors raise."""
    where = f"s3://{bucket}/{key}"
    try:
        with s3_errors(f"GET {where}"):
            response = client.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
            body = response["Body"].read(MAX_SMALL_OBJECT + 1)
    except ArtifactError as exc:
        cause = exc.__cause__
        if isinstance(cause, ClientError) and error_code(cause) in _MISSING_CODES:
            return None
        raise
    if len(body) > MAX_SMALL_OBJECT:
        raise ArtifactError(f"{where}: larger than {MAX_SMALL_OBJECT} bytes")
    return body


def put_file(client: S3Client, *, bucket: str, key: str, path: Path, content_type: str) -> None:
    """Upload one file with a SHA256 checksum the server verifies (promise 27)."""
    with s3_errors(f"PUT s3://{bucket}/{key}"), Path(path).open("rb") as fh:
        client.put_object(
            Bucket=bucket, Key=key, Body=fh, ChecksumAlgorithm="SHA256", ContentType=content_type
        )


def download_to(client: S3Client, *, bucket: str, key: str, out: IO[bytes]) -> str:
    """Stream an object into ``out``; return its sha256 (hex)."""
    digest = hashlib.sha256()
    with s3_errors(f"GET s3://{bucket}/{key}"):
        body = client.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")["Body"]
        while chunk := body.read(_READ_CHUNK):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def _release_doc(version: str, manifest: Any, sha: str, size: int) -> dict[str, Any]:
    return {
        "format": RELEASE_FORMAT,
        "schema_version": 1,
        "version": version,
        "created_at": manifest.created_at,
        "data_fingerprint": manifest.data_fingerprint,
        "files": {TARBALL: {"sha256": sha, "size": size}},
    }


def _parse_release(raw: bytes, *, where: str) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
        entry = doc["files"][TARBALL]
        ok = doc.get("format") == RELEASE_FORMAT and isinstance(entry["sha256"], str)
        ok = ok and type(entry["size"]) is int and isinstance(doc.get("version"), str)
    except (ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"{where}: unreadable release manifest ({exc})") from None
    if not ok:
        raise ArtifactError(f"{where}: not a {RELEASE_FORMAT} manifest")
    return dict(doc)


def _check_same(existing: dict[str, Any], sha: str, *, where: str) -> None:
    if existing["files"][TARBALL]["sha256"] != sha:
        raise ArtifactError(
            f"{where}: version already published with different contents; refusing to overwrite"
        )


def pack_bundle(bundle_dir: Path, dest: Path) -> Path:
    """Verify ``bundle_dir`` and pack its manifest + listed files as a deterministic tar.gz."""
    manifest = verify_bundle(bundle_dir)
    members = {name: Path(bundle_dir) / name for name in manifest.files}
    members[MANIFEST] = Path(bundle_dir) / MANIFEST
    return write_tar_gz(members, dest)


def _publish_release(client: S3Client, *, bucket: str, base: str, doc: dict[str, Any]) -> bool:
    """PUT manifest.json with If-None-Match: *; False when the same version already exists."""
    key = join_key(base, MANIFEST)
    body = json.dumps(doc, indent=2, sort_keys=True).encode()
    try:
        with s3_errors(f"PUT s3://{bucket}/{key}"):
            client.put_object(
                Bucket=bucket,
                Key=key,
                Body=body,
                ChecksumAlgorithm="SHA256",
                ContentType="application/json",
                IfNoneMatch="*",
            )
    except ArtifactError as exc:
        cause = exc.__cause__
        if not (isinstance(cause, ClientError) and error_code(cause) in _PRECONDITION_CODES):
            raise
        existing = get_small_object(client, bucket, key)
        if existing is None:
            raise
        _check_same(_parse_release(existing, where=key), doc["files"][TARBALL]["sha256"], where=key)
        logger.info("version published concurrently, nothing to do key=%s", key)
        return False
    return True


def set_s3_current(client: S3Client, *, bucket: str, prefix: str, version: str) -> None:
    """Point ``prefix/models/current`` at a published version (no write if it already does)."""
    if not VERSION_PATTERN.fullmatch(version):
        raise ArtifactError(f"invalid version name {version[:80]!r}")
    base = join_key(prefix, MODELS, version)
    if get_small_object(client, bucket, join_key(base, MANIFEST)) is None:
        raise ArtifactError(f"s3://{bucket}/{base}: not published (no manifest.json)")
    key = join_key(prefix, MODELS, POINTER)
    body = f"{version}\n".encode()
    if get_small_object(client, bucket, key) == body:
        return
    with s3_errors(f"PUT s3://{bucket}/{key}"):
        client.put_object(
            Bucket=bucket, Key=key, Body=body, ChecksumAlgorithm="SHA256", ContentType="text/plain"
        )
    logger.info("s3 current version set bucket=%s prefix=%s version=%s", bucket, prefix, version)


def upload_bundle(
    bundle_dir: Path,
    *,
    bucket: str,
    prefix: str,
    client: S3Client,
    make_current: bool = True,
) -> PublishedBundle:
    """Publish a verified bundle as ``prefix/models/<version>/``, manifest last.

    Order: the tarball, then ``manifest.json`` (If-None-Match), then the ``current`` pointer.
    Publishing the same version again uploads nothing.
    """
    manifest = verify_bundle(bundle_dir)
    version = manifest.version
    base = join_key(prefix, MODELS, version)
    tar_key = join_key(base, TARBALL)
    uri = f"s3://{bucket}/{tar_key}"
    with tempfile.TemporaryDirectory(prefix="rf-bundle-") as tmp:
        tarball = pack_bundle(bundle_dir, Path(tmp) / TARBALL)
        sha, size = sha256_file(tarball), tarball.stat().st_size
        existing = get_small_object(client, bucket, join_key(base, MANIFEST))
        if existing is not None:
            _check_same(_parse_release(existing, where=uri), sha, where=uri)
            logger.info("version already on S3, nothing uploaded uri=%s", uri)
            is_new = False
        else:
            put_file(
                client, bucket=bucket, key=tar_key, path=tarball, content_type="application/gzip"
            )
            doc = _release_doc(version, manifest, sha, size)
            is_new = _publish_release(client, bucket=bucket, base=base, doc=doc)
    if make_current:
        set_s3_current(client, bucket=bucket, prefix=prefix, version=version)
    logger.info("bundle on S3 uri=%s sha256=%s new=%s", uri, sha[:12], is_new)
    return PublishedBundle(version=version, uri=uri, sha256=sha, size=size, is_new=is_new)


def resolve_s3_version(client: S3Client, s3_uri: str) -> tuple[str, str, str]:
    """Return (bucket, version, version prefix) that an S3 URI names.

    ``s3://b/prefix`` goes through ``models/current``;
    ``s3://b/prefix/models/<version>[/model.tar.gz|/manifest.json]`` names a version directly.
    """
    bucket, key = parse_s3_uri(s3_uri)
    path = PurePosixPath(key or ".")
    if path.name in (TARBALL, MANIFEST):
        path = path.parent
    if path.parent.name == MODELS and VERSION_PATTERN.fullmatch(path.name):
        return bucket, path.name, path.as_posix()
    pointer_key = join_key(key, MODELS, POINTER)
    raw = get_small_object(client, bucket, pointer_key)
    if raw is None:
        raise ArtifactError(f"s3://{bucket}/{pointer_key}: no current version pointer")
    version = raw.decode("ascii", errors="replace").strip()
    if not VERSION_PATTERN.fullmatch(version):
        raise ArtifactError(f"s3://{bucket}/{pointer_key}: invalid version {version[:80]!r}")
    return bucket, version, join_key(key, MODELS, version)


def _fetch_release(client: S3Client, bucket: str, base: str) -> dict[str, Any]:
    where = f"s3://{bucket}/{base}"
    raw = get_small_object(client, bucket, join_key(base, MANIFEST))
    if raw is None:
        raise ArtifactError(f"{where}: no manifest.json, so no published version there")
    return _parse_release(raw, where=where)


def _extract_verified(tarball: Path, staging: Path, version: str) -> None:
    safe_extract(tarball, staging)
    manifest = verify_bundle(staging, allow_unlisted=False)
    if manifest.version != version:
        raise ArtifactError(f"bundle says version {manifest.version!r}, S3 says {version!r}")


def download_bundle(
    s3_uri: str, dest: Path, *, client: S3Client, make_current: bool = False
) -> Path:
    """Download, check and extract a published version into ``dest/<version>``; return it.

    ``dest`` works as a local artifacts root: a version already there (and verifying) is not
    downloaded again, and ``make_current`` points ``dest/current`` at it.
    """
    bucket, version, base = resolve_s3_version(client, s3_uri)
    dest = Path(dest)
    target = dest / version
    if target.is_dir():
        verify_bundle(target)
        logger.info("bundle already downloaded path=%s", target)
    else:
        release = _fetch_release(client, bucket, base)
        expected = release["files"][TARBALL]
        dest.mkdir(parents=True, exist_ok=True)
        staging = dest / f"{STAGING_PREFIX}{uuid.uuid4().hex}"
        tarball = dest / f"{STAGING_PREFIX}{uuid.uuid4().hex}.tar.gz"
        try:
            with tarball.open("wb") as fh:
                sha = download_to(client, bucket=bucket, key=join_key(base, TARBALL), out=fh)
            if sha != expected["sha256"] or tarball.stat().st_size != expected["size"]:
                raise ArtifactError(
                    f"s3://{bucket}/{base}/{TARBALL}: sha256 {sha[:12]}… does not match its "
                    f"manifest ({expected['sha256'][:12]}…)"
                )
            _extract_verified(tarball, staging, version)
            staging.rename(target)
            fsync_dir(dest)
        finally:
            tarball.unlink(missing_ok=True)
            shutil.rmtree(staging, ignore_errors=True)
        logger.info("bundle downloaded uri=s3://%s/%s path=%s", bucket, base, target)
    if make_current:
        set_current(dest, version)
    return target


def localize_artifacts(location: str | Path, *, config: AwsConfig, cache_dir: Path) -> Path:
    """Return a local artifacts root (with ``current``) for a local path or an ``s3://`` URI.

    The hook for loading a bundle from S3: the serving version is downloaded and verified into
    ``cache_dir/<version>`` and ``cache_dir/current`` names it; local paths pass through.
    """
    if not is_s3_uri(location):
        return Path(location)
    download_bundle(str(location), cache_dir, client=make_s3_client(config), make_current=True)
    return Path(cache_dir)
