"""Array helpers of the history store: validate rows, complete days, rebuild a state (no I/O).

Merging a batch with what is stored (duplicates, corrections, conflicts) is history_merge.py.

Rows may carry four optional columns besides the actual: ``confirm_spike`` and ``correction``
(booleans; storage.plausibility and storage.conflict_policy say what they allow),
``request_id`` (text, recorded with corrections) and ``is_closed`` (boolean: the data set closed
the store that day, an ``open`` 0 row; its sales must be 0 and it is stored as a closed day).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Final, Self

import numpy as np
import numpy.typing as npt
import pandas as pd

from retail_forecast.closed_days import NO_YEARLY_CLOSURES, YearlyClosures
from retail_forecast.errors import DataValidationError, ForecastError, UnknownSeriesError
from retail_forecast.schema import (
    CANONICAL_COLUMNS,
    DATE,
    FAMILY,
    IS_CLOSED,
    PROMO,
    SORT_KEYS,
    STORE,
    TARGET,
    SeriesKey,
)
from retail_forecast.storage.conflict_policy import CORRECTION, disagreeing_repeats
from retail_forecast.storage.plausibility import CONFIRM_SPIKE, MAX_SALES

DAY: Final = np.timedelta64(1, "D")
ACTUAL_COLUMNS: Final = (DATE, STORE, FAMILY, TARGET, PROMO)
REQUEST_ID: Final = "request_id"
"""Optional text column of actuals: the request that sent them (recorded with corrections)."""
MAX_LISTED: Final = 20

Dates = npt.NDArray[np.datetime64]
Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]


@dataclasses.dataclass(frozen=True)
class Window:
    """Complete days: arrays ``[n_series, len(dates)]``."""

    dates: Dates
    sales: Floats
    promo: Ints
    closed: Bools


@dataclasses.dataclass(frozen=True)
class Batch:
    """Validated actuals of one call, one row per key (series index ``idx``)."""

    dates: Dates
    idx: Ints
    sales: Floats
    promo: Ints
    closed: Bools  # a day the data set closes (``is_closed``)


@dataclasses.dataclass(frozen=True)
class RowFlags:
    """Per batch row: its position in the received rows and its optional flags."""

    pos: Ints
    confirm: Bools
    correct: Bools
    request: npt.NDArray[np.object_]


@dataclasses.dataclass(frozen=True)
class PendingDay:
    """Actuals of one date after the history end; ``mask`` marks the series that have one."""

    day: np.datetime64
    mask: Bools
    sales: Floats
    promo: Ints
    closed: Bools

    @classmethod
    def empty(cls, day: np.datetime64, n_series: int) -> Self:
        return cls(
            day=day,
            mask=np.zeros(n_series, dtype=bool),
            sales=np.zeros(n_series, dtype=np.float64),
            promo=np.zeros(n_series, dtype=np.int64),
            closed=np.zeros(n_series, dtype=bool),
        )

    def with_rows(self, idx: Ints, sales: Floats, promo: Ints, closed: Bools) -> Self:
        """Return a copy with these series' actuals set (copy-on-write keeps snapshots fixed)."""
        mask, new_sales, new_promo = self.mask.copy(), self.sales.copy(), self.promo.copy()
        new_closed = self.closed.copy()
        mask[idx], new_sales[idx], new_promo[idx], new_closed[idx] = True, sales, promo, closed
        return dataclasses.replace(
            self, mask=mask, sales=new_sales, promo=new_promo, closed=new_closed
        )

    def fill_closed(self, idx: Ints) -> Self:
        mask, closed = self.mask.copy(), self.closed.copy()
        mask[idx], closed[idx] = True, True
        return dataclasses.replace(self, mask=mask, closed=closed)


# -- the initial window from a canonical frame -----------------------------------------------


def _check_columns(frame: pd.DataFrame, required: tuple[str, ...]) -> None:
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise DataValidationError(f"missing columns {missing}; expected {list(required)}")


def _check_values(sales: Floats, promo: npt.NDArray[np.float64], what: str) -> None:
    if not np.isfinite(sales).all() or (sales < 0).any() or (sales > MAX_SALES).any():
        raise DataValidationError(f"{what}: sales must be finite, >= 0 and <= {MAX_SALES:g}")
    if not np.isfinite(promo).all() or (promo < 0).any() or (promo != np.round(promo)).any():
        raise DataValidationError(f"{what}: onpromotion must be an integer >= 0")


def frame_to_window(
    sales: pd.DataFrame, *, n_days: int
) -> tuple[tuple[SeriesKey, ...], tuple[str, ...], Window]:
    """Series, family categories and the last ``n_days`` of a canonical sales frame."""
    _check_columns(sales, CANONICAL_COLUMNS)
    if sales.empty:
        raise DataValidationError("the sales frame is empty")
    all_dates = sales[DATE].to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")
    start = all_dates.max() - DAY * (n_days - 1)
    tail = sales.loc[all_dates >= start].sort_values(list(SORT_KEYS), kind="stable")
    days = tail[DATE].to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")
    dates = np.unique(days)
    width = len(dates)
    if (np.diff(dates) != DAY).any() or len(tail) % width:
        raise DataValidationError("the sales frame is not a complete daily panel (gaps)")
    n_series = len(tail) // width
    stores = tail[STORE].to_numpy(dtype=np.int64).reshape(n_series, width)
    families = tail[FAMILY].astype(str).to_numpy().reshape(n_series, width)
    if (
        (days.reshape(n_series, width) != dates).any()
        or (stores != stores[:, :1]).any()
        or (families != families[:, :1]).any()
    ):
        raise DataValidationError("the sales frame is not one row per series and day")
    values = tail[TARGET].to_numpy(dtype=np.float64).reshape(n_series, width)
    promo = tail[PROMO].to_numpy(dtype=np.float64).reshape(n_series, width)
    _check_values(values, promo, "sales frame")
    dtype = sales[FAMILY].dtype
    categories = (
        tuple(str(c) for c in dtype.categories)
        if isinstance(dtype, pd.CategoricalDtype)
        else tuple(sorted(set(families[:, 0])))
    )
    series = tuple(zip(stores[:, 0].tolist(), families[:, 0].tolist(), strict=True))
    window = Window(
        dates=dates,
        sales=values,
        promo=promo.astype(np.int64),
        closed=tail[IS_CLOSED].to_numpy(dtype=bool).reshape(n_series, width),
    )
    return series, categories, window


# -- a batch of actuals ----------------------------------------------------------------------


def _parse_columns(rows: pd.DataFrame) -> tuple[Dates, Ints, Floats, Ints]:
    dates = pd.to_datetime(rows[DATE], errors="coerce")
    stores = pd.to_numeric(rows[STORE], errors="coerce").to_numpy(dtype=np.float64)
    sales = pd.to_numeric(rows[TARGET], errors="coerce").to_numpy(dtype=np.float64)
    promo = pd.to_numeric(rows[PROMO], errors="coerce").to_numpy(dtype=np.float64)
    bad = (dates.isna() | (dates != dates.dt.normalize())).to_numpy()
    with np.errstate(invalid="ignore"):
        bad |= ~np.isfinite(stores) | (stores != np.round(stores))
        bad |= ~np.isfinite(sales) | (sales < 0) | (sales > MAX_SALES)
        bad |= ~np.isfinite(promo) | (promo < 0) | (promo != np.round(promo))
    if bad.any():
        positions = np.flatnonzero(bad)[:MAX_LISTED].tolist()
        raise DataValidationError(
            f"{int(bad.sum())} invalid actuals rows (positions {positions}): date must be a day,"
            f" store_nbr an integer, sales finite, >= 0 and <= {MAX_SALES:g}, onpromotion an"
            " integer >= 0"
        )
    day = dates.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")
    return day, stores.astype(np.int64), sales, promo.astype(np.int64)


def _flag(rows: pd.DataFrame, name: str) -> Bools:
    """Read an optional boolean column (missing values: False); anything else is invalid."""
    if name not in rows:
        return np.zeros(len(rows), dtype=bool)
    if rows[name].dtype == bool:
        return rows[name].to_numpy(dtype=bool)
    values = rows[name].to_numpy(dtype=object)
    missing = pd.isna(values)
    valid = missing | np.fromiter((isinstance(v, bool | np.bool_) for v in values), bool)
    if not valid.all():
        positions = np.flatnonzero(~valid)[:MAX_LISTED].tolist()
        raise DataValidationError(f"{name} must be true or false (rows at positions {positions})")
    return np.where(missing, False, values).astype(bool)


def _flags(rows: pd.DataFrame, order: Ints, keep: Bools) -> RowFlags:
    """Flag the kept rows: a key's identical repeats count as one row with any of their flags."""
    starts = np.flatnonzero(keep)
    requests = rows[REQUEST_ID].to_numpy(dtype=object) if REQUEST_ID in rows else None

    def merged(name: str) -> Bools:
        values = _flag(rows, name)[order]
        return np.logical_or.reduceat(values, starts) if starts.size else values[:0]

    return RowFlags(
        pos=order[keep].astype(np.int64),
        confirm=merged(CONFIRM_SPIKE),
        correct=merged(CORRECTION),
        request=np.full(starts.size, None, object) if requests is None else requests[order][keep],
    )


def normalize_rows(rows: pd.DataFrame, index: Mapping[SeriesKey, int]) -> tuple[Batch, RowFlags]:
    """Validate actuals and map them to series indices; identical repeats collapse to one."""
    _check_columns(rows, ACTUAL_COLUMNS)
    dates, stores, sales, promo = _parse_columns(rows)
    closed = _closed_flags(rows, sales)
    keys = zip(stores.tolist(), rows[FAMILY].astype(str).tolist(), strict=True)
    idx = np.array([index.get(key, -1) for key in keys], dtype=np.int64)
    if (idx < 0).any():
        unknown = sorted(
            {(int(stores[i]), str(rows[FAMILY].iloc[i])) for i in np.flatnonzero(idx < 0)}
        )
        raise UnknownSeriesError(f"unknown series (store_nbr, family): {unknown[:MAX_LISTED]}")
    order = np.lexsort((idx, dates))
    dates, idx, sales, promo = dates[order], idx[order], sales[order], promo[order]
    closed = closed[order]
    repeat = np.zeros(len(idx), dtype=bool)
    repeat[1:] = (dates[1:] == dates[:-1]) & (idx[1:] == idx[:-1])
    differs = disagreeing_repeats(repeat, sales, promo) | (repeat & (closed != np.roll(closed, 1)))
    if differs.any():
        raise DataValidationError(
            f"{int(differs.sum())} keys (date, store_nbr, family) appear with different values"
            " in the same request"
        )
    keep = ~repeat
    batch = Batch(
        dates=dates[keep], idx=idx[keep], sales=sales[keep], promo=promo[keep], closed=closed[keep]
    )
    return batch, _flags(rows, order, keep)


def _closed_flags(rows: pd.DataFrame, sales: Floats) -> Bools:
    """Read the optional ``is_closed`` column; a closed day's actual must have sales 0."""
    closed = _flag(rows, IS_CLOSED)
    sold = closed & (sales != 0)
    if sold.any():
        positions = np.flatnonzero(sold)[:MAX_LISTED].tolist()
        raise DataValidationError(
            f"{int(sold.sum())} actuals of a closed day have sales other than 0 (rows at"
            f" positions {positions}): a closed day's sales are 0"
        )
    return closed


def check_contiguous(
    end: np.datetime64,
    pending: Mapping[np.datetime64, PendingDay],
    closures: YearlyClosures = NO_YEARLY_CLOSURES,
) -> None:
    """Refuse a gap between the history end and the last pending date (yearly closures excepted)."""
    if not pending:
        return
    last = max(pending)
    expected = end + DAY * np.arange(1, int((last - end) // DAY) + 1)
    missing = [str(d) for d in expected if d not in pending and not closures.is_closed(d)]
    if missing:
        raise DataValidationError(
            f"actuals must continue the history without gaps: history ends {end}, rows for"
            f" {last} arrived but {missing[:MAX_LISTED]} have none"
        )


def complete_days(
    end: np.datetime64,
    pending: Mapping[np.datetime64, PendingDay],
    n_series: int,
    closures: YearlyClosures = NO_YEARLY_CLOSURES,
) -> tuple[list[PendingDay], list[tuple[np.datetime64, Ints]]]:
    """Days after ``end`` that are now complete, in order, and the yearly closures' rows filled.

    A day of ``closures`` (the bundle's yearly closed days) needs no actuals: its missing rows
    are filled closed once a later day has arrived.
    """
    completed: list[PendingDay] = []
    filled: list[tuple[np.datetime64, Ints]] = []
    last = max(pending) if pending else end
    day = end + DAY
    while day <= last:
        current = pending.get(day)
        if current is not None and current.mask.all():
            completed.append(current)
        elif closures.is_closed(day) and day < last:
            base = current or PendingDay.empty(day, n_series)
            missing = np.flatnonzero(~base.mask).astype(np.int64)
            completed.append(base.fill_closed(missing))
            filled.append((day, missing))
        else:
            break
        day = day + DAY
    return completed, filled


def rows_to_state(
    batch: Batch, *, end: np.datetime64, n_series: int, source: str
) -> tuple[Window, dict[np.datetime64, PendingDay]]:
    """Rebuild the window and the pending days from stored rows; ForecastError if corrupt."""
    in_window = batch.dates <= end
    dates = np.unique(batch.dates[in_window])
    width = len(dates)
    if (
        width == 0
        or dates[-1] != end
        or (np.diff(dates) != DAY).any()
        or int(in_window.sum()) != width * n_series
    ):
        raise ForecastError(f"{source}: history store is corrupt (incomplete window)")
    col = ((batch.dates[in_window] - dates[0]) // DAY).astype(np.int64)
    row = batch.idx[in_window]
    window = Window(
        dates=dates,
        sales=np.zeros((n_series, width), dtype=np.float64),
        promo=np.zeros((n_series, width), dtype=np.int64),
        closed=np.zeros((n_series, width), dtype=bool),
    )
    window.sales[row, col] = batch.sales[in_window]
    window.promo[row, col] = batch.promo[in_window]
    window.closed[row, col] = batch.closed[in_window]
    pending: dict[np.datetime64, PendingDay] = {}
    for day in np.unique(batch.dates[~in_window]):
        rows = np.flatnonzero(batch.dates == day)
        empty = PendingDay.empty(day, n_series)
        pending[day] = empty.with_rows(
            batch.idx[rows], batch.sales[rows], batch.promo[rows], batch.closed[rows]
        )
    return window, pending
