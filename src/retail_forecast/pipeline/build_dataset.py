"""ingest -> validate -> clean: the canonical sales frame, the future frame and side tables.

``build_dataset`` reads and checks everything and writes nothing; ``import_dataset`` does the
same, writes the quarantine (``<quarantine_dir>/<run_id>/quarantine.csv``) and then the
processed parquet files atomically, with ``summary.json`` written last. Importing the same
input again rewrites nothing ("unchanged"). ``load_processed`` reads the processed frames back.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from retail_forecast import __version__
from retail_forecast.config import DataConfig
from retail_forecast.data_processing.clean import complete_panel, fingerprint
from retail_forecast.data_processing.ingest import (
    SPECS,
    RawTable,
    empty_quarantine,
    read_table,
    resolve_data_dir,
)
from retail_forecast.data_processing.validate import (
    FileReport,
    TableCheck,
    ValidationReport,
    budget_errors,
    check_aux_file,
    check_domain,
    check_sales_file,
    family_domain,
    horizon_mask,
    sales_keys,
)
from retail_forecast.errors import DataValidationError, MissingInputError
from retail_forecast.schema import CANONICAL_COLUMNS, DATE, FAMILY, ID, PROMO, STORE
from retail_forecast.utils.io import (
    read_json,
    sha256_file,
    write_bytes_atomic,
    write_json_atomic,
    write_parquet_atomic,
)

logger = logging.getLogger(__name__)

SALES_FILE: Final = "sales.parquet"
TEST_FILE: Final = "test.parquet"
SUMMARY_FILE: Final = "summary.json"
QUARANTINE_FILE: Final = "quarantine.csv"
SIDE_TABLES: Final = ("stores", "oil", "holidays", "transactions")


@dataclass
class BuiltDataset:
    """The validated, cleaned data set; side tables are None when their file is absent."""

    sales: pd.DataFrame
    test: pd.DataFrame | None
    holidays: pd.DataFrame | None
    oil: pd.DataFrame | None
    transactions: pd.DataFrame | None
    stores: pd.DataFrame | None
    report: ValidationReport
    fingerprint: str
    quarantine: pd.DataFrame = field(default_factory=empty_quarantine)
    quarantine_path: Path | None = None  # set by import_dataset when rows were quarantined
    written: bool | None = None  # set by import_dataset: False when processed was unchanged

    def tables(self) -> dict[str, pd.DataFrame]:
        """Every present frame by its processed file stem."""
        named = {"sales": self.sales, "test": self.test}
        named |= {name: getattr(self, name) for name in SIDE_TABLES}
        return {name: frame for name, frame in named.items() if frame is not None}


def _dominant_first_date(dates: npt.NDArray[np.datetime64]) -> np.datetime64 | None:
    """Return the first test date among dates with >= half the rows of the busiest one.

    A single stray row (a typo'd date) therefore cannot move it.
    """
    valid = dates[~np.isnat(dates)]
    if len(valid) == 0:
        return None
    values, counts = np.unique(valid, return_counts=True)
    return np.datetime64(values[counts >= counts.max() / 2].min(), "ns")


def _check_sales(
    train: RawTable, test: RawTable | None, stores: npt.NDArray[np.int64]
) -> tuple[TableCheck, TableCheck | None, list[str]]:
    train_check = TableCheck(train)
    check_sales_file(train_check, is_test=False)
    families = family_domain(train_check.typed[DATE], train_check.typed[FAMILY])
    check_domain(train_check, stores=stores, families=families)
    test_check = None
    if test is not None:
        test_check = TableCheck(test)
        check_sales_file(test_check, is_test=True)
        check_domain(test_check, stores=stores, families=families)
        first_test = _dominant_first_date(test_check.typed[DATE])
        if first_test is not None:
            train_check.flag("future_date", train_check.typed[DATE] >= first_test)
    train_check.flag_duplicates(sales_keys(train_check))
    if test_check is not None:
        good = ~train_check.bad()
        if good.any():
            last_train = train_check.typed[DATE][good].max()
            test_check.flag("outside_horizon", horizon_mask(test_check.typed[DATE], last_train))
        test_check.flag_duplicates(sales_keys(test_check))
    return train_check, test_check, families


def validate_tables(
    raws: dict[str, RawTable | None], config: DataConfig
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame, ValidationReport]:
    """Every rule over every file; kept typed frames, all quarantined rows, the report."""
    stores_raw, train_raw = raws["stores"], raws["train"]
    if stores_raw is None or train_raw is None:
        raise MissingInputError("train and stores are required")
    checks: dict[str, TableCheck] = {"stores": TableCheck(stores_raw)}
    check_aux_file(checks["stores"], stores=None)
    store_ids = checks["stores"].typed[STORE][~checks["stores"].bad()]
    checks["train"], test_check, families = _check_sales(train_raw, raws.get("test"), store_ids)
    if test_check is not None:
        checks["test"] = test_check
    for name in ("oil", "holidays", "transactions"):
        raw = raws.get(name)
        if raw is not None:
            checks[name] = TableCheck(raw)
            check_aux_file(checks[name], stores=store_ids)
    frames: dict[str, pd.DataFrame] = {}
    quarantines: list[pd.DataFrame] = []
    reports: dict[str, FileReport] = {}
    for name, check in checks.items():
        frames[name], quarantine, reports[name] = check.finish(config)
        quarantines.append(quarantine)
    report = ValidationReport(files=reports, families_domain=families)
    report.errors = budget_errors(reports, config)
    quarantine = pd.concat([q for q in quarantines if len(q)] or [empty_quarantine()])
    return frames, quarantine.reset_index(drop=True), report


def build_dataset(data_dir: str | Path, config: DataConfig, *, strict: bool = True) -> BuiltDataset:
    """Read, validate and clean a Kaggle-layout directory; writes nothing.

    Raises MissingInputError for a missing required file or column, and (with ``strict``)
    DataValidationError when the report says the data is unusable; ``strict=False`` returns
    the data set anyway so a caller can report every count.
    """
    directory = resolve_data_dir(data_dir)
    if not directory.is_dir():
        raise MissingInputError(f"data directory {directory} not found")
    raws = {name: read_table(directory, spec) for name, spec in SPECS.items()}
    frames, quarantine, report = validate_tables(raws, config)
    sales, stats = complete_panel(frames["train"])
    report.series, report.panel_rows = stats.series, len(sales)
    report.filled_closed_rows, report.filled_open_rows = (
        stats.filled_closed_rows,
        stats.filled_open_rows,
    )
    report.stores = int(sales[STORE].nunique())
    report.families = int(sales[FAMILY].nunique())
    if len(sales):
        report.first_date = str(sales[DATE].min().date())
        report.last_date = str(sales[DATE].max().date())
    report.fingerprint = fingerprint(sales)
    if strict and not report.is_usable:
        raise DataValidationError("data unusable: " + "; ".join(report.errors))
    test = frames.get("test")
    if test is not None:
        test = test[[c for c in (ID, DATE, STORE, FAMILY, PROMO) if c in test.columns]]
    return BuiltDataset(
        sales=sales,
        test=test,
        holidays=frames.get("holidays"),
        oil=frames.get("oil"),
        transactions=frames.get("transactions"),
        stores=frames.get("stores"),
        report=report,
        fingerprint=report.fingerprint,
        quarantine=quarantine,
    )


def input_files(data_dir: Path) -> list[Path]:
    """List the files an import reads, in a stable order."""
    found = [data_dir / spec.filename for spec in SPECS.values()]
    found = [p for p in found if p.exists()]
    if not (data_dir / SPECS["train"].filename).exists():
        found += sorted((data_dir / "train_parts").glob("*.parquet"))
    return found


def run_id_for(data_dir: Path, config: DataConfig) -> str:
    """sha256(config ‖ input-file hashes ‖ code version)[:16] (RELIABILITY 23)."""
    digest = hashlib.sha256(config.model_dump_json().encode("utf-8"))
    for path in input_files(data_dir):
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


def import_dataset(data_dir: str | Path, config: DataConfig) -> BuiltDataset:
    """build_dataset + quarantine + processed parquet files; raises when data is unusable."""
    built = build_dataset(data_dir, config, strict=False)
    run_id = run_id_for(resolve_data_dir(data_dir), config)
    built.quarantine_path = _write_quarantine(built, config.quarantine_dir / run_id)
    if not built.report.is_usable:
        where = f" (quarantine: {built.quarantine_path})" if built.quarantine_path else ""
        raise DataValidationError("data unusable: " + "; ".join(built.report.errors) + where)
    built.written = write_processed(built, config.processed_dir)
    return built


def summary_rows(report: ValidationReport) -> list[tuple[str, str]]:
    """Label/value pairs for a human summary of a report (the CLI renders them)."""
    rows = [
        (
            "rows read / kept / quarantined",
            f"{report.rows_read:,} / {report.rows_kept:,} / {report.rows_quarantined:,}",
        ),
        ("series (stores x families)", f"{report.series:,} ({report.stores} x {report.families})"),
        ("dates", f"{report.first_date} .. {report.last_date}"),
        (
            "panel rows (Dec-25 filled, other filled)",
            f"{report.panel_rows:,} ({report.filled_closed_rows:,}, {report.filled_open_rows:,})",
        ),
        ("fingerprint", str(report.fingerprint)),
    ]
    for name, file_report in report.files.items():
        rows.append(
            (
                f"{name} ({file_report.file})",
                f"{file_report.rows_read:,} read, {file_report.rows_kept:,} kept, "
                f"{file_report.rows_quarantined:,} quarantined",
            )
        )
    rows += [(f"issue {rule}", f"{count:,} rows") for rule, count in sorted(report.issues.items())]
    rows.append(("usable", "yes" if report.is_usable else "NO: " + "; ".join(report.errors)))
    return rows


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
