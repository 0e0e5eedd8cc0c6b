"""Contract checks over every input file in one pass -> typed frames, quarantine, report.

Validation is lazy (like pandera's ``lazy=True``): every rule runs on every row and all
failures are collected before anything is decided. Rules (the ``rule`` column of the
quarantine; a row breaking several is quarantined once, with every rule joined by ``;`` in
the order the checks run):

- ``encoding`` (bytes that are not UTF-8), ``malformed_row`` (wrong number of fields);
- ``bad_<column>``: empty or unparseable value (strict int, ISO ``YYYY-MM-DD`` date, float);
- ``bad_open``: an ``open`` value (optional column of train and test) other than 0 or 1;
- ``non_finite_sales``, ``negative_sales``, ``negative_onpromotion``,
  ``negative_transactions``;
- ``unknown_store``: ``store_nbr`` not in stores.csv;
- ``unknown_family``: the family domain is the set of families present on at least
  ``FAMILY_MIN_DATE_SHARE`` (50 %) of the train file's dates. It is learned from train, not
  from test.csv, so test rows are checked against it too. On the real data: the 33 families;
- ``future_date``: a train date on or after the first test date ("in the future of test");
- ``outside_horizon``: a test date not within the horizon (``forecast.horizon`` days) after the
  last train date;
- ``duplicate_key``: a second row for the same key ((date, store_nbr, family) for train and
  test; store_nbr for stores; date for oil; (date, store_nbr) for transactions), among rows
  that pass every other rule: the first in source order is kept, later copies quarantined.

The data is unusable (``ValidationReport.is_usable`` False) when a file's quarantined share
exceeds ``DataConfig.max_quarantine_share``, when train has no valid row, or, with
``DataConfig.fail_on_key_rules``, when any ``duplicate_key``/``unknown_store`` row exists.
"""

from __future__ import annotations

import logging
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from retail_forecast.config import DataConfig
from retail_forecast.data_processing.ingest import (
    RAW_VALUE,
    RULE,
    SOURCE_FILE,
    SOURCE_LINE,
    RawTable,
    empty_quarantine,
)
from retail_forecast.data_processing.panel_shape import OPEN
from retail_forecast.data_processing.parse import (
    parse_bool,
    parse_date,
    parse_float,
    parse_int,
    parse_text,
)
from retail_forecast.data_processing.validation_report import (
    FileReport,
    ValidationReport,
    budget_errors,
)
from retail_forecast.schema import DATE, FAMILY, ID, PROMO, STORE, TARGET

logger = logging.getLogger(__name__)

__all__ = ["FileReport", "TableCheck", "ValidationReport", "budget_errors", "family_domain"]

FAMILY_MIN_DATE_SHARE: Final = 0.5
DENSE_LIMIT: Final = 50_000_000  # key spaces up to this size are counted, not sorted
BoolArray = npt.NDArray[np.bool_]


class TableCheck:
    """Collects rule masks for one raw table, then splits it into kept rows and quarantine."""

    def __init__(self, raw: RawTable) -> None:
        self.raw = raw
        self.n = len(raw.frame)
        self.masks: dict[str, BoolArray] = {k: v for k, v in raw.flags.items() if v.any()}
        self.typed: dict[str, Any] = {}

    def flag(self, rule: str, mask: BoolArray) -> None:
        if mask.any():
            previous = self.masks.get(rule)
            self.masks[rule] = mask if previous is None else previous | mask

    def bad(self) -> BoolArray:
        out = np.zeros(self.n, dtype=bool)
        for mask in self.masks.values():
            out |= mask
        return out

    def column(self, name: str, parser: str, *, allow_empty: bool = False) -> Any:
        """Parse one raw column with its parser; unparseable rows get ``bad_<name>``."""
        series = self.raw.frame[name]
        values: Any
        if parser == "int":
            values, bad = parse_int(series)
        elif parser == "float":
            values, bad = parse_float(series, allow_empty=allow_empty)
        elif parser == "date":
            values, bad = parse_date(series)
        elif parser == "bool":
            values, bad = parse_bool(series)
        else:
            values, bad = parse_text(series)
        self.flag(f"bad_{name}", bad)
        self.typed[name] = values
        return values

    def flag_duplicates(self, keys: list[npt.NDArray[np.int64]]) -> None:
        """Flag later copies of a key among rows that pass every other rule (stable order)."""
        candidates = np.flatnonzero(~self.bad())
        if len(candidates) < 2:
            return
        everything = len(candidates) == self.n
        subset = [np.asarray(k if everything else k[candidates], dtype=np.int64) for k in keys]
        combined = _combine_keys(subset)
        small = combined is not None and int(combined.max()) < DENSE_LIMIT
        if small and int(np.bincount(np.asarray(combined)).max()) < 2:  # no copy: skip the sort
            return
        if combined is not None:
            order = np.argsort(combined, kind="stable")
            ordered = combined[order]
            same = ordered[1:] == ordered[:-1]
        else:
            order = np.lexsort(list(reversed(subset)))
            same = np.ones(len(order) - 1, dtype=bool)
            for key in subset:
                same &= key[order[1:]] == key[order[:-1]]
        mask = np.zeros(self.n, dtype=bool)
        mask[candidates[order[1:][same]]] = True
        self.flag("duplicate_key", mask)

    def finish(self, config: DataConfig) -> tuple[pd.DataFrame, pd.DataFrame, FileReport]:
        """Kept typed rows (source order), the quarantine rows, and the file's counts."""
        bad = self.bad()
        keep = ~bad
        frame = pd.DataFrame(
            {name: _take(values, keep) for name, values in self.typed.items()}, copy=False
        )
        quarantine = pd.concat(
            [q for q in (self._quarantine(bad), self.raw.rejected) if len(q)]
            or [empty_quarantine()],
            ignore_index=True,
        )
        issues: dict[str, int] = {}
        for rules in quarantine[RULE]:
            for rule in str(rules).split(";"):
                issues[rule] = issues.get(rule, 0) + 1
        names = list(self.raw.source_file.categories)
        label = names[0] if len(names) == 1 else f"{len(names)} parquet parts"
        report = FileReport(label, self.raw.rows_read, int(keep.sum()), len(quarantine), issues)
        return frame.reset_index(drop=True), quarantine, report

    def _quarantine(self, bad: BoolArray) -> pd.DataFrame:
        rows = np.flatnonzero(bad)
        if len(rows) == 0:
            return empty_quarantine()
        rules = np.full(len(rows), "", dtype=object)
        for rule, mask in self.masks.items():
            hit = mask[rows]
            rules[hit] = np.where(rules[hit] == "", rule, rules[hit] + ";" + rule)
        raw = self.raw.frame.iloc[rows]
        text = pd.Series("", index=raw.index, dtype=object)
        for i, name in enumerate(raw.columns):
            values = raw[name].astype(object).where(raw[name].notna(), "").astype(str)
            text = values if i == 0 else text + "," + values
        return pd.DataFrame(
            {
                SOURCE_FILE: np.asarray(self.raw.source_file)[rows].astype(object),
                SOURCE_LINE: self.raw.source_line[rows],
                RULE: rules,
                RAW_VALUE: text.to_numpy(dtype=object),
            }
        )


def _combine_keys(keys: list[npt.NDArray[np.int64]]) -> npt.NDArray[np.int64] | None:
    """Pack several int keys into one int64 (one sort instead of a lexsort); None if too wide."""
    combined = np.zeros(len(keys[0]), dtype=np.int64)
    width = 1
    for key in keys:
        low, high = int(key.min()), int(key.max())
        span = high - low + 1
        width *= span
        if width >= 2**62:
            return None
        combined = combined * span + (key - low)
    return combined


def _take(values: Any, keep: BoolArray) -> Any:
    if isinstance(values, pd.Categorical):
        return values[keep]
    return np.asarray(values)[keep]


def family_domain(dates: npt.NDArray[np.datetime64], families: pd.Categorical) -> list[str]:
    """Families present on at least FAMILY_MIN_DATE_SHARE of the distinct dates, sorted."""
    codes = np.asarray(families.codes, dtype=np.int64)
    valid = (codes >= 0) & ~np.isnat(dates)
    if not valid.any():
        return []
    days = dates[valid].astype("datetime64[D]").astype(np.int64)
    days -= days.min()
    n_cat = max(len(families.categories), 1)
    pair = days * n_cat + codes[valid]
    if (int(days.max()) + 1) * n_cat < DENSE_LIMIT:
        seen = np.bincount(pair, minlength=(int(days.max()) + 1) * n_cat) > 0
        per_family = seen.reshape(-1, n_cat).sum(axis=0)
        n_dates = int(seen.reshape(-1, n_cat).any(axis=1).sum())
    else:
        pairs = np.unique(pair)
        per_family = np.bincount(pairs % n_cat, minlength=n_cat)
        n_dates = len(np.unique(days))
    names = [str(c) for c in families.categories]
    return sorted(
        n for n, c in zip(names, per_family, strict=True) if c >= FAMILY_MIN_DATE_SHARE * n_dates
    )


def check_domain(
    check: TableCheck, *, stores: npt.NDArray[np.int64] | None, families: list[str] | None
) -> None:
    """``unknown_store`` / ``unknown_family`` for rows whose value parsed."""
    if stores is not None and STORE in check.typed:
        parsed = ~check.masks.get(f"bad_{STORE}", np.zeros(check.n, dtype=bool))
        check.flag("unknown_store", parsed & ~np.isin(check.typed[STORE], stores))
    if families is not None and FAMILY in check.typed:
        fam: pd.Categorical = check.typed[FAMILY]
        known = np.asarray(pd.Index(fam.categories).isin(families), dtype=bool)
        codes = np.asarray(fam.codes, dtype=np.int64)
        parsed = ~check.masks.get(f"bad_{FAMILY}", np.zeros(check.n, dtype=bool)) & (codes >= 0)
        check.flag("unknown_family", parsed & ~known[np.where(codes < 0, 0, codes)])
        check.typed[FAMILY] = fam.set_categories(families)


def check_sales_file(check: TableCheck, *, is_test: bool) -> None:
    """Parse the train or test columns; value rules that need no other file."""
    if ID in check.raw.frame.columns:
        check.column(ID, "int")
    check.column(DATE, "date")
    check.column(STORE, "int")
    check.column(FAMILY, "text")
    if not is_test:
        sales = check.column(TARGET, "float")
        parsed = ~check.masks.get(f"bad_{TARGET}", np.zeros(check.n, dtype=bool))
        finite = np.isfinite(sales)
        check.flag("non_finite_sales", parsed & ~finite)
        check.flag("negative_sales", finite & (sales < 0))
        check.typed.pop(ID, None)
    promo = check.column(PROMO, "int")
    check.flag("negative_onpromotion", promo < 0)
    if OPEN in check.raw.frame.columns:
        is_open = check.column(OPEN, "int")
        parsed = ~check.masks.get(f"bad_{OPEN}", np.zeros(check.n, dtype=bool))
        check.flag(f"bad_{OPEN}", parsed & (is_open != 0) & (is_open != 1))


def sales_keys(check: TableCheck) -> list[npt.NDArray[np.int64]]:
    dates = check.typed[DATE].astype("datetime64[D]").astype(np.int64)
    fam_codes = np.asarray(check.typed[FAMILY].codes, dtype=np.int64)
    return [dates, check.typed[STORE], fam_codes]


def check_aux_file(check: TableCheck, *, stores: npt.NDArray[np.int64] | None) -> None:
    """Check stores, oil, holidays or transactions: parse, range rules, keys."""
    frame = check.raw.frame
    name = check.raw.name
    if name == "stores":
        check.column(STORE, "int")
        for col in ("city", "state", "type"):
            if col in frame.columns:
                check.column(col, "text")
        if "cluster" in frame.columns:
            check.column("cluster", "int")
        check.flag_duplicates([check.typed[STORE]])
        return
    dates = check.column(DATE, "date")
    day = dates.astype("datetime64[D]").astype(np.int64)
    if name == "oil":
        check.column("dcoilwtico", "float", allow_empty=True)
        check.flag_duplicates([day])
    elif name == "holidays":
        for col in ("type", "locale", "locale_name", "description"):
            check.column(col, "text")
        check.column("transferred", "bool")
    elif name == "transactions":
        check.column(STORE, "int")
        count = check.column("transactions", "int")
        check.flag("negative_transactions", count < 0)
        check_domain(check, stores=stores, families=None)
        check.flag_duplicates([day, check.typed[STORE]])


def horizon_mask(
    dates: npt.NDArray[np.datetime64], last_train: np.datetime64, horizon: int
) -> BoolArray:
    """Test rows outside (last train date, last train date + ``horizon`` days]."""
    with np.errstate(invalid="ignore"):
        delta = (dates - last_train).astype("timedelta64[D]").astype(np.int64)
    return ~np.isnat(dates) & ((delta < 1) | (delta > horizon))
