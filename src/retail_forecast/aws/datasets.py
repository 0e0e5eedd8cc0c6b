"""Data sets on S3: the seed's Kaggle-layout CSVs under ``prefix/data/``, marker written last.

``upload_dataset`` takes a raw Kaggle-layout directory (uploaded as is) or a processed
directory from ``data import`` (exported back to Kaggle columns: ``train.csv``, ``test.csv``,
``stores.csv``, ...). The old marker is deleted first and the new ``manifest.json`` (sha256 +
size of every file) goes last, so a reader never accepts a half-written or mixed upload.
``download_dataset`` fetches the listed files into a local cache, checks every sha256, and
returns a directory that the local reader (``build_dataset``) takes as it is.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd

from retail_forecast.aws.env import is_s3_uri, join_key, make_s3_client, parse_s3_uri
from retail_forecast.aws.s3 import download_to, get_small_object, put_file, s3_errors
from retail_forecast.config import AwsConfig
from retail_forecast.data_processing.ingest import SPECS, TRAIN_PARTS_DIR
from retail_forecast.errors import ArtifactError, DataValidationError, MissingInputError
from retail_forecast.manifest import check_member_name
from retail_forecast.schema import DATE, ID, IS_CLOSED, TEST_COLUMNS, TRAIN_COLUMNS
from retail_forecast.utils.io import fsync_dir, read_json, sha256_file

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

DATA: Final = "data"
MARKER: Final = "manifest.json"
DATASET_FORMAT: Final = "retail_forecast-s3-dataset"
PROCESSED_SUMMARY: Final = "summary.json"
# processed parquet stem -> Kaggle file spec name
PROCESSED_TABLES: Final = {
    "stores": "stores",
    "oil": "oil",
    "holidays": "holidays",
    "transactions": "transactions",
}


@dataclass(frozen=True)
class UploadedDataset:
    """Where a data set was uploaded and which files it holds."""

    uri: str
    files: dict[str, dict[str, Any]]


def raw_dataset_files(directory: Path) -> dict[str, Path]:
    """Kaggle-layout files present in ``directory`` (upload name -> path); train is required."""
    files = {
        spec.filename: directory / spec.filename
        for spec in SPECS.values()
        if (directory / spec.filename).is_file()
    }
    parts = directory / TRAIN_PARTS_DIR
    if "train.csv" not in files and parts.is_dir():
        files |= {f"{TRAIN_PARTS_DIR}/{p.name}": p for p in sorted(parts.glob("*.parquet"))}
    if not any(name.startswith(("train.csv", TRAIN_PARTS_DIR)) for name in files):
        raise MissingInputError(f"{directory}: no train.csv, train_parts/ or processed data")
    for name in files:  # refused now, not when the marker is read back
        check_member_name(name, source=str(directory))
    return files


def _checked_processed(directory: Path) -> dict[str, Path]:
    hashes: dict[str, str] = read_json(directory / PROCESSED_SUMMARY).get("sha256", {})
    paths: dict[str, Path] = {}
    for name, expected in hashes.items():
        path = directory / f"{name}.parquet"
        if not path.is_file() or sha256_file(path) != expected:
            raise DataValidationError(f"{path} is missing or changed since import")
        paths[name] = path
    if "sales" not in paths:
        raise MissingInputError(f"{directory} holds no processed sales frame")
    return paths


def _write_csv(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False, date_format="%Y-%m-%d", lineterminator="\n")
    return path


def export_processed(directory: Path, out_dir: Path) -> dict[str, Path]:
    """Write a processed directory back as Kaggle-layout CSVs (Dec-25 filled rows dropped)."""
    paths = _checked_processed(directory)
    sales = pd.read_parquet(paths["sales"])
    sales = sales.loc[~sales[IS_CLOSED]].sort_values([DATE, "store_nbr", "family"], kind="stable")
    sales = sales.assign(**{ID: np.arange(len(sales), dtype=np.int64)})
    out = {"train.csv": _write_csv(sales[list(TRAIN_COLUMNS)], out_dir / "train.csv")}
    if "test" in paths:
        test = pd.read_parquet(paths["test"])
        if ID not in test.columns:
            test = test.assign(**{ID: np.arange(len(test), dtype=np.int64) + len(sales)})
        out["test.csv"] = _write_csv(test[list(TEST_COLUMNS)], out_dir / "test.csv")
    for stem, spec_name in PROCESSED_TABLES.items():
        if stem in paths:
            spec = SPECS[spec_name]
            frame = pd.read_parquet(paths[stem])
            columns = [c for c in (*spec.columns, *spec.optional_columns) if c in frame.columns]
            out[spec.filename] = _write_csv(frame[columns], out_dir / spec.filename)
    return out


def _marker_doc(files: dict[str, Path]) -> dict[str, Any]:
    return {
        "format": DATASET_FORMAT,
        "schema_version": 1,
        "created_at": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
        "files": {
            name: {"sha256": sha256_file(path), "size": path.stat().st_size}
            for name, path in sorted(files.items())
        },
    }


def _parse_marker(raw: bytes, *, where: str) -> dict[str, dict[str, Any]]:
    try:
        doc = json.loads(raw)
        files = doc["files"]
        ok = doc.get("format") == DATASET_FORMAT and isinstance(files, dict) and bool(files)
        for name, entry in files.items():
            check_member_name(name, source=where)
            ok = ok and isinstance(entry["sha256"], str) and type(entry["size"]) is int
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ArtifactError(f"{where}: unreadable dataset marker ({exc})") from None
    if not ok:
        raise ArtifactError(f"{where}: not a {DATASET_FORMAT} marker")
    return dict(files)


def upload_dataset(
    directory: Path, *, bucket: str, prefix: str, client: S3Client
) -> UploadedDataset:
    """Upload a raw or processed data directory to ``s3://bucket/prefix/data/``, marker last."""
    directory = Path(directory)
    base = join_key(prefix, DATA)
    marker_key = join_key(base, MARKER)
    with tempfile.TemporaryDirectory(prefix="rf-data-") as tmp:
        if (directory / PROCESSED_SUMMARY).is_file():
            files = export_processed(directory, Path(tmp))
        else:
            files = raw_dataset_files(directory)
        doc = _marker_doc(files)
        old = get_small_object(client, bucket, marker_key)
        stale = set(_parse_marker(old, where=marker_key)) - set(files) if old else set()
        with s3_errors(f"DELETE s3://{bucket}/{marker_key}"):
            client.delete_object(Bucket=bucket, Key=marker_key)  # readers stop trusting it now
        for name in sorted(stale):
            with s3_errors(f"DELETE s3://{bucket}/{base}/{name}"):
                client.delete_object(Bucket=bucket, Key=join_key(base, name))
        for name, path in sorted(files.items()):
            kind = "text/csv" if name.endswith(".csv") else "application/octet-stream"
            put_file(client, bucket=bucket, key=join_key(base, name), path=path, content_type=kind)
    with s3_errors(f"PUT s3://{bucket}/{marker_key}"):
        client.put_object(
            Bucket=bucket,
            Key=marker_key,
            Body=json.dumps(doc, indent=2, sort_keys=True).encode(),
            ChecksumAlgorithm="SHA256",
            ContentType="application/json",
        )
    uri = f"s3://{bucket}/{base}/"
    logger.info("data set uploaded uri=%s files=%d", uri, len(files))
    return UploadedDataset(uri=uri, files=doc["files"])


def _find_marker(client: S3Client, bucket: str, key: str) -> tuple[str, bytes]:
    for base in (key, join_key(key, DATA)):
        raw = get_small_object(client, bucket, join_key(base, MARKER))
        if raw is not None:
            return base, raw
    raise MissingInputError(
        f"s3://{bucket}/{key}: no data set marker ({MARKER}); nothing uploaded, or an upload "
        "did not finish"
    )


def _is_complete(directory: Path, files: dict[str, dict[str, Any]]) -> bool:
    return all(
        (directory / name).is_file() and sha256_file(directory / name) == entry["sha256"]
        for name, entry in files.items()
    )


def _fetch_files(
    client: S3Client, *, bucket: str, base: str, files: dict[str, dict[str, Any]], into: Path
) -> None:
    for name, entry in sorted(files.items()):
        path = into / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            sha = download_to(client, bucket=bucket, key=join_key(base, name), out=fh)
        if sha != entry["sha256"]:
            raise ArtifactError(
                f"s3://{bucket}/{base}/{name}: sha256 {sha[:12]}… does not match the marker "
                f"({entry['sha256'][:12]}…); the data set changed during the download"
            )


def download_dataset(s3_uri: str, cache_dir: Path, *, client: S3Client) -> Path:
    """Fetch a data set uploaded by :func:`upload_dataset`; return its local directory.

    ``s3_uri`` is ``s3://bucket/prefix/data`` or ``s3://bucket/prefix``. The cache directory
    is named after the marker's hash, so an unchanged data set is not downloaded twice.
    """
    bucket, key = parse_s3_uri(s3_uri)
    base, raw = _find_marker(client, bucket, key)
    files = _parse_marker(raw, where=f"s3://{bucket}/{base}/{MARKER}")
    target = Path(cache_dir) / f"s3-{hashlib.sha256(raw).hexdigest()[:16]}"
    if target.is_dir() and _is_complete(target, files):
        logger.info("data set already cached path=%s", target)
        return target
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    staging = Path(cache_dir) / f".staging-{uuid.uuid4().hex}"
    try:
        _fetch_files(client, bucket=bucket, base=base, files=files, into=staging)
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        fsync_dir(Path(cache_dir))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("data set downloaded uri=s3://%s/%s path=%s", bucket, base, target)
    return target


def localize_data_dir(location: str | Path, *, config: AwsConfig, cache_dir: Path) -> str | Path:
    """``s3://...`` -> a local cached copy (see :func:`download_dataset`); anything else as is.

    The hook for ``--data-dir s3://...``: call it before ``build_dataset`` / ``import_dataset``.
    """
    if not is_s3_uri(location):
        return location
    return download_dataset(str(location), cache_dir, client=make_s3_client(config))
