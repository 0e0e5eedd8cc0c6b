"""ingest -> validate -> clean: the canonical sales frame, the future frame and side tables.

``build_dataset`` reads a Kaggle-layout directory, checks every rule in one pass, completes the
panel and returns a :class:`BuiltDataset`; it writes nothing. Writing the processed files and
the quarantine is the pipeline's ``data import`` (:mod:`retail_forecast.pipeline.data_import`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from retail_forecast.closed_days import frame_yearly_closures
from retail_forecast.config import DataConfig, ForecastConfig
from retail_forecast.data_processing.clean import (
    complete_panel,
    fingerprint,
    mark_future_closures,
)
from retail_forecast.data_processing.ingest import RawTable, empty_quarantine, resolve_data_dir
from retail_forecast.data_processing.mapping import read_tables
from retail_forecast.data_processing.panel_shape import (
    SeriesDays,
    closed_matrix,
    closure_summary,
    gap_summary,
    require_daily,
    series_days,
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
from retail_forecast.data_processing.validation_report import closure_text, gap_text
from retail_forecast.errors import DataValidationError, MissingInputError
from retail_forecast.schema import DATE, FAMILY, ID, IS_CLOSED, PROMO, STORE

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
    train: RawTable, test: RawTable | None, stores: npt.NDArray[np.int64], *, horizon: int
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
            dates = test_check.typed[DATE]
            test_check.flag("outside_horizon", horizon_mask(dates, last_train, horizon))
        test_check.flag_duplicates(sales_keys(test_check))
    return train_check, test_check, families


def validate_tables(
    raws: dict[str, RawTable | None], config: DataConfig, *, horizon: int
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame, ValidationReport]:
    """Every rule over every file; kept typed frames, all quarantined rows, the report."""
    stores_raw, train_raw = raws["stores"], raws["train"]
    if stores_raw is None or train_raw is None:
        raise MissingInputError("train and stores are required")
    checks: dict[str, TableCheck] = {"stores": TableCheck(stores_raw)}
    check_aux_file(checks["stores"], stores=None)
    store_ids = checks["stores"].typed[STORE][~checks["stores"].bad()]
    checks["train"], test_check, families = _check_sales(
        train_raw, raws.get("test"), store_ids, horizon=horizon
    )
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


def _shape_report(
    panel: SeriesDays, frames: dict[str, pd.DataFrame], report: ValidationReport
) -> None:
    """Gaps and closures of the valid train rows (panel_shape), into the report."""
    if len(panel.day) == 0:
        return
    first = int(panel.day.min())
    n_days = int(panel.day.max()) - first + 1
    holidays = frames.get("holidays")
    closed = closed_matrix(
        np.unique(panel.store), first, n_days, holidays=holidays, store_table=frames.get("stores")
    )
    closed |= (np.bincount(panel.day - first, minlength=n_days) == 0)[None, :]  # chain-wide
    report.gaps = gap_summary(panel, closed, first)
    report.closures = closure_summary(
        frames["train"], frames.get("test"), holidays=holidays, first=first, n_days=n_days
    )
    report.closures["closed_store_days"] = int(closed.sum())


def build_dataset(
    data_dir: str | Path, config: DataConfig, *, strict: bool = True, horizon: int | None = None
) -> BuiltDataset:
    """Read, validate and clean a Kaggle-layout directory; writes nothing.

    Raises MissingInputError for a missing required file or column, DataValidationError for a
    panel that is not daily (always, before any day is filled) and (with ``strict``) when the
    report says the data is unusable; ``strict=False`` returns the data set anyway so a caller
    can report every count. ``horizon`` (days test.csv may cover after the last train date)
    defaults to the ``forecast.horizon`` setting's default.
    """
    directory = resolve_data_dir(data_dir)
    if not directory.is_dir():
        raise MissingInputError(f"data directory {directory} not found")
    raws = read_tables(directory, config)  # the Kaggle layout, or a profile's mapping
    if horizon is None:
        horizon = ForecastConfig().horizon
    frames, quarantine, report = validate_tables(raws, config, horizon=horizon)
    panel = series_days(frames["train"])
    require_daily(panel)  # before complete_panel: a weekly panel is never expanded
    _shape_report(panel, frames, report)
    sales, stats = complete_panel(
        frames["train"], holidays=frames.get("holidays"), stores=frames.get("stores")
    )
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
    yearly = frame_yearly_closures(sales)
    if report.closures:
        report.closures["yearly"] = yearly.to_json()
    if strict and not report.is_usable:
        raise DataValidationError("data unusable: " + "; ".join(report.errors))
    test = frames.get("test")
    if test is not None:
        test = mark_future_closures(
            test, holidays=frames.get("holidays"), stores=frames.get("stores"), yearly=yearly
        )
        test = test[[c for c in (ID, DATE, STORE, FAMILY, PROMO, IS_CLOSED) if c in test.columns]]
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
        ("gaps (missing days, no closure)", gap_text(report.gaps)),
        ("closures", closure_text(report.closures)),
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
