"""``data import``: build the data set, write its quarantine and the processed parquet files.

``import_dataset`` runs :func:`~retail_forecast.data_processing.dataset.build_dataset`, writes
the quarantine (``<quarantine_dir>/<run_id>/quarantine.csv``) and then the processed parquet
files atomically, with ``summary.json`` written last. Importing the same input again rewrites
nothing ("unchanged"). ``load_processed`` reads the processed frames back.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any, Final

import pandas as pd

from retail_forecast import __version__
from retail_forecast.config import DataConfig
from retail_forecast.data_processing.clean import fingerprint
from retail_forecast.data_processing.dataset import SIDE_TABLES, BuiltDataset, build_dataset
from retail_forecast.data_processing.ingest import SPECS, resolve_data_dir
from retail_forecast.data_processing.mapping import input_paths, is_mapped
from retail_forecast.errors import DataValidationError, MissingInputError
from retail_forecast.schema import CANONICAL_COLUMNS
from retail_forecast.utils.io import (
    read_json,
    sha256_file,
    write_bytes_atomic,
    write_json_atomic,
    write_parquet_atomic,
)

logger = logging.getLogger(__name__)

SUMMARY_FILE: Final = "summary.json"
QUARANTINE_FILE: Final = "quarantine.csv"


def input_files(data_dir: Path, config: DataConfig | None = None) -> list[Path]:
    """List the files an import reads, in a stable order."""
    if config is not None and is_mapped(config):
        return input_paths(data_dir, config)
    found = [data_dir / spec.filename for spec in SPECS.values()]
    found = [p for p in found if p.exists()]
    if not (data_dir / SPECS["train"].filename).exists():
        found += sorted((data_dir / "train_parts").glob("*.parquet"))
    return found


def run_id_for(data_dir: Path, config: DataConfig) -> str:
    """sha256(config ‖ input-file hashes ‖ code version)[:16] (promise 23, docs/RELIABILITY.md)."""
    digest = hashlib.sha256(config.model_dump_json().encode("utf-8"))
    for path in input_files(data_dir, config):
        digest.update(f"{path.relative_to(data_dir)}:{sha256_file(path)}\n".encode())
    digest.update(__version__.encode("utf-8"))
    return digest.hexdigest()[:16]


def _write_quarantine(built: BuiltDataset, directory: Path) -> Path | None:
    if not len(built.quarantine):
        return None
    path = directory / QUARANTINE_FILE
    if not path.exists():
        csv = built.quarantine.to_csv(index=False, lineterminator="\n")
        write_bytes_atomic(path, csv.encode("utf-8"))
    logger.warning("%d rows quarantined -> %s", len(built.quarantine), path)
    return path


def write_processed(built: BuiltDataset, processed_dir: Path) -> bool:
    """Write every frame + summary.json atomically; False (nothing written) when unchanged."""
    tables = built.tables()
    content: dict[str, Any] = {
        "fingerprint": built.fingerprint,
        "tables": {
            name: built.fingerprint if name == "sales" else fingerprint(frame)
            for name, frame in tables.items()
        },
        "report": built.report.to_dict(),
    }
    summary_path = processed_dir / SUMMARY_FILE
    if summary_path.exists():
        old = read_json(summary_path)
        same = old.get("content") == content and all(
            (processed_dir / f"{name}.parquet").exists()
            and sha256_file(processed_dir / f"{name}.parquet") == old.get("sha256", {}).get(name)
            for name in tables
        )
        if same:
            logger.info(
                "processed data in %s unchanged (fingerprint %s)",
                processed_dir,
                built.fingerprint[:12],
            )
            return False
    hashes: dict[str, str] = {}
    for name, frame in tables.items():
        path = processed_dir / f"{name}.parquet"
        write_parquet_atomic(path, frame)
        hashes[name] = sha256_file(path)
    for stale in ("test", *SIDE_TABLES):
        if stale not in tables:
            (processed_dir / f"{stale}.parquet").unlink(missing_ok=True)
    write_json_atomic(summary_path, {"content": content, "sha256": hashes})
    logger.info(
        "wrote %d processed files to %s (fingerprint %s)",
        len(tables),
        processed_dir,
        built.fingerprint[:12],
    )
    return True


def import_dataset(
    data_dir: str | Path, config: DataConfig, *, horizon: int | None = None
) -> BuiltDataset:
    """build_dataset + quarantine + processed parquet files; raises when data is unusable.

    ``horizon``: the days test.csv may cover (``forecast.horizon``; None: its default).
    """
    built = build_dataset(data_dir, config, strict=False, horizon=horizon)
    run_id = run_id_for(resolve_data_dir(data_dir), config)
    built.quarantine_path = _write_quarantine(built, config.quarantine_dir / run_id)
    if not built.report.is_usable:
        where = f" (quarantine: {built.quarantine_path})" if built.quarantine_path else ""
        raise DataValidationError("data unusable: " + "; ".join(built.report.errors) + where)
    built.written = write_processed(built, config.processed_dir)
    return built


def load_processed(processed_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Read the canonical sales frame and the future frame (None if none was imported).

    The files are checked against the sha256 recorded at import.
    """
    summary_path = processed_dir / SUMMARY_FILE
    if not summary_path.exists():
        raise MissingInputError(f"no processed data in {processed_dir}: run `data import` first")
    hashes: dict[str, str] = read_json(summary_path).get("sha256", {})
    frames: dict[str, pd.DataFrame] = {}
    for name in ("sales", "test"):
        path = processed_dir / f"{name}.parquet"
        if name not in hashes:
            continue
        if not path.exists() or sha256_file(path) != hashes[name]:
            raise DataValidationError(f"{path} is missing or changed since import")
        frames[name] = pd.read_parquet(path)
    if "sales" not in frames:
        raise MissingInputError(f"{processed_dir} holds no sales frame")
    sales = frames["sales"][list(CANONICAL_COLUMNS)]
    return sales, frames.get("test")
