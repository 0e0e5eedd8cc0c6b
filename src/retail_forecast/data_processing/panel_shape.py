"""The shape of a sales panel before it is completed: daily or not, gaps, closures.

Read on the valid train rows, before :func:`~retail_forecast.data_processing.clean.complete_panel`
fills any day, so that a panel that is not daily is refused instead of being expanded into
filled days (a weekly panel would become six filled days per real one), and so the report can
say which missing days are gaps (no row, no reason) and which are known closures:

- days on which the whole chain has no row (:mod:`retail_forecast.closed_days`);
- an ``open`` column in train.csv/test.csv (:data:`OPEN`: 1 open, 0 closed);
- rows of type ``Closed`` (:data:`CLOSED_TYPE`) in holidays_events.csv, scoped by their locale:
  ``National`` every store, ``Regional`` the stores whose ``state`` is ``locale_name``,
  ``Local`` the stores whose ``city`` is ``locale_name``.

This module only reports; how a closure is forecast is the features' and models' business.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from retail_forecast.errors import DataValidationError
from retail_forecast.schema import DATE, FAMILY, STORE

OPEN: Final = "open"
CLOSED_TYPE: Final = "Closed"
# A series' spacing is the most common number of days between its consecutive rows; spacings
# above this are lumped together (a series with such a mode has too few rows to call).
MAX_SPACING: Final = 31
SPACING_NAMES: Final = {7: "weekly", 14: "fortnightly", 28: "four-weekly"}
MAX_DATES_LISTED: Final = 50  # chain-wide closed dates listed in the report (all are counted)
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class SeriesDays:
    """Valid train rows sorted by series then day, as integer arrays."""

    key: IntArray  # series index (0..n_series-1)
    day: IntArray  # days since 1970-01-01
    store: IntArray  # store_nbr of each series
    family: list[str]  # family of each series


def series_days(rows: pd.DataFrame) -> SeriesDays:
    """Sort the valid rows by (series, day) in one argsort of a packed key."""
    day = rows[DATE].to_numpy(dtype="datetime64[D]").astype(np.int64)
    if len(day) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return SeriesDays(empty, empty, empty, [])
    family = rows[FAMILY].astype("category").cat
    names = [str(c) for c in family.categories]
    store = rows[STORE].to_numpy(dtype=np.int64)
    n_fam = max(len(names), 1)
    packed = (store - store.min()) * n_fam + family.codes.to_numpy().astype(np.int64)
    present = np.bincount(packed) > 0  # stores x families: a small, dense key space
    series = np.flatnonzero(present).astype(np.int64)
    key = (np.cumsum(present) - 1)[packed]
    if len(series) < 2**15 and bool((day[1:] >= day[:-1]).all()):
        # rows in date order (the Kaggle files): a stable radix sort of small keys suffices
        order = np.argsort(key.astype(np.int16), kind="stable")
    else:
        span = int(day.max() - day.min()) + 1
        order = np.argsort(key * span + (day - day.min()), kind="stable")
    return SeriesDays(
        key=key[order].astype(np.int64),
        day=day[order],
        store=(series // n_fam + store.min()).astype(np.int64),
        family=[names[int(c)] for c in series % n_fam],
    )


def _steps(panel: SeriesDays) -> tuple[IntArray, IntArray, IntArray]:
    """Series key, previous day and day of each pair of consecutive rows of one series."""
    same = panel.key[1:] == panel.key[:-1]
    return panel.key[1:][same], panel.day[:-1][same], panel.day[1:][same]


def dominant_spacing(panel: SeriesDays) -> tuple[int, float]:
    """Return the most common per-series spacing in days and the share of series with it.

    Series with one row have no spacing and are left out; ``(1, 1.0)`` when none has two.
    """
    key, before, after = _steps(panel)
    if len(key) == 0:
        return 1, 1.0
    step = np.minimum(after - before, MAX_SPACING + 1)
    counts = np.bincount(
        key * (MAX_SPACING + 2) + step, minlength=(int(key.max()) + 1) * (MAX_SPACING + 2)
    )
    per_series = counts.reshape(-1, MAX_SPACING + 2)
    spaced = per_series.sum(axis=1) > 0
    modes = per_series[spaced].argmax(axis=1)
    values, n = np.unique(modes, return_counts=True)
    best = int(np.argmax(n))
    return int(values[best]), float(n[best] / spaced.sum())


def require_daily(panel: SeriesDays) -> None:
    """Refuse a panel whose dominant spacing is not one day, saying what was found."""
    spacing, share = dominant_spacing(panel)
    if spacing == 1:
        return
    if spacing > MAX_SPACING:
        what = f"more than {MAX_SPACING} days apart"
        kind = "a panel with too few rows per series"
    else:
        what = f"{spacing} days apart"
        kind = f"a {SPACING_NAMES.get(spacing, f'{spacing}-day')} panel"
    raise DataValidationError(
        f"train: dates are {what} in {share:.0%} of series: {kind}; this product needs daily "
        "rows (one row per series and day)"
    )


def closed_matrix(
    stores: IntArray,
    first: int,
    n_days: int,
    *,
    holidays: pd.DataFrame | None,
    store_table: pd.DataFrame | None,
) -> npt.NDArray[np.bool_]:
    """Flag stores x days (from day ``first``) closed by a Closed holidays row."""
    closed = np.zeros((len(stores), n_days), dtype=np.bool_)
    rows = closed_rows(holidays)
    offsets = pd.to_datetime(rows[DATE]).to_numpy(dtype="datetime64[D]").astype(np.int64) - first
    for at, locale, name in zip(offsets, rows["locale"], rows["locale_name"], strict=True):
        if 0 <= at < n_days:
            closed[_stores_of(str(locale), str(name), stores, store_table), int(at)] = True
    return closed


def closed_rows(holidays: pd.DataFrame | None) -> pd.DataFrame:
    """Return the holidays rows of type Closed (none when there is no holidays table)."""
    if holidays is None or not len(holidays):
        return pd.DataFrame(columns=[DATE, "locale", "locale_name"])
    kind = holidays["type"].astype(str)
    return holidays.loc[kind == CLOSED_TYPE, [DATE, "locale", "locale_name"]]


def _stores_of(
    locale: str, name: str, stores: IntArray, table: pd.DataFrame | None
) -> npt.NDArray[np.bool_]:
    if locale == "National":
        return np.ones(len(stores), dtype=bool)
    column = {"Regional": "state", "Local": "city"}.get(str(locale))
    if table is None or column is None or column not in table.columns:
        return np.zeros(len(stores), dtype=bool)
    hit = table.loc[table[column].astype(str) == str(name), STORE].to_numpy(dtype=np.int64)
    return np.isin(stores, hit)


def gap_summary(panel: SeriesDays, closed: npt.NDArray[np.bool_], first: int) -> dict[str, Any]:
    """Missing days inside each series' history that no closure explains; the longest gap.

    ``closed`` is per store of ``np.unique(panel.store)`` (rows) from day ``first`` (columns).
    """
    key, before, after = _steps(panel)
    out: dict[str, Any] = {"series": 0, "missing_days": 0, "longest": None}
    hole = after - before > 1
    if not hole.any():
        return out
    key, before, after = key[hole], before[hole], after[hole]
    store_row = np.searchsorted(np.unique(panel.store), panel.store[key])
    cum = np.concatenate([np.zeros((len(closed), 1), dtype=np.int64), closed.cumsum(axis=1)], 1)
    explained = cum[store_row, after - first] - cum[store_row, before + 1 - first]
    missing = after - before - 1 - explained
    real = missing > 0
    if not real.any():
        return out
    key, before, after, missing = key[real], before[real], after[real], missing[real]
    longest = int(np.argmax(after - before))
    out["series"] = len(np.unique(key))
    out["missing_days"] = int(missing.sum())
    out["longest"] = {
        "store_nbr": int(panel.store[key[longest]]),
        "family": panel.family[key[longest]],
        "first_missing": str(np.datetime64(int(before[longest]) + 1, "D")),
        "last_missing": str(np.datetime64(int(after[longest]) - 1, "D")),
        "days": int(after[longest] - before[longest] - 1),
    }
    return out


def closure_summary(
    train: pd.DataFrame,
    test: pd.DataFrame | None,
    *,
    holidays: pd.DataFrame | None,
    first: int,
    n_days: int,
) -> dict[str, Any]:
    """Count closed days: chain-wide (no row at all), the open flag, the Closed holidays rows."""
    seen = np.zeros(n_days, dtype=np.bool_)
    seen[train[DATE].to_numpy(dtype="datetime64[D]").astype(np.int64) - first] = True
    chain = (np.flatnonzero(~seen) + first).astype("datetime64[D]")
    closed = closed_rows(holidays)
    out: dict[str, Any] = {
        "chain_closed_days": len(chain),
        "chain_closed_dates": [str(d) for d in chain[:MAX_DATES_LISTED]],
        "open_flag": OPEN in train.columns,
        "open_flag_closed_rows": 0,
        "open_flag_closed_dates": 0,
        "test_closed_rows": 0,
        "holidays_closed_rows": len(closed),
    }
    if OPEN in train.columns:
        shut = train[OPEN].to_numpy() == 0
        out["open_flag_closed_rows"] = int(shut.sum())
        out["open_flag_closed_dates"] = int(train.loc[shut, DATE].nunique())
    if test is not None and OPEN in test.columns:
        out["test_closed_rows"] = int((test[OPEN].to_numpy() == 0).sum())
    return out
