"""Request rows and history into the canonical frames the models take (one code path).

Both serving paths use these functions: the API (history from the :class:`HistorySnapshot`)
and ``retail-forecast forecast`` (history from a data directory). Each request forecasts from
the history of *its own* series only, trimmed to the days the store keeps: the models compute
per-series features (no cross-series aggregate), so the result is the same as forecasting from
the full panel, and a one-series request stays cheap.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from retail_forecast.errors import DataValidationError, UnknownSeriesError
from retail_forecast.features.builder import Panel, carry_over_closures
from retail_forecast.features.calendar import days_after
from retail_forecast.features.keys import family_dtype
from retail_forecast.schema import DATE, FAMILY, IS_CLOSED, PROMO, STORE, TARGET, SeriesKey
from retail_forecast.storage.history import HistorySnapshot

logger = logging.getLogger(__name__)

REQUEST_COLUMNS = (DATE, STORE, FAMILY, PROMO)
NS_PER_DAY = 86_400 * 10**9


def canonical_rows(rows: pd.DataFrame, families: Sequence[str]) -> pd.DataFrame:
    """Return ``rows`` with canonical dtypes (RangeIndex, other columns such as ``id`` kept).

    ``families`` are the bundle's families; a family outside them raises UnknownSeriesError.
    Rows that already have the canonical dtypes (what the API builds) are only re-indexed.
    """
    missing = [c for c in REQUEST_COLUMNS if c not in rows.columns]
    if missing:
        raise DataValidationError(f"forecast rows lack the columns {missing}")
    if rows.empty:
        raise DataValidationError("no rows to forecast")
    categories = sorted(families)
    out = rows if _is_range_index(rows.index) else rows.reset_index(drop=True)
    if not _is_canonical(out, categories):
        out = out.copy()
        out[DATE] = pd.to_datetime(out[DATE]).dt.normalize().astype("datetime64[ns]")
        out[STORE] = out[STORE].astype(np.int64)
        names = out[FAMILY].astype(str)
        unknown = sorted(set(names.unique()) - set(categories))
        if unknown:
            raise UnknownSeriesError(f"families not in the model bundle: {unknown[:5]}")
        out[FAMILY] = pd.Categorical(names, categories=categories)
        out[PROMO] = out[PROMO].astype(np.int64)
    if (out[PROMO].to_numpy() < 0).any():
        raise DataValidationError("onpromotion must be a non-negative integer on every row")
    return out


def _is_range_index(index: pd.Index) -> bool:
    return isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1


def _is_canonical(rows: pd.DataFrame, categories: list[str]) -> bool:
    family = rows[FAMILY].dtype
    if not isinstance(family, pd.CategoricalDtype) or list(family.categories) != categories:
        return False
    if (rows[FAMILY].cat.codes.to_numpy() < 0).any():
        return False
    if rows[DATE].dtype != np.dtype("datetime64[ns]"):
        return False
    nanos = rows[DATE].to_numpy().view(np.int64)
    return bool(
        (nanos % NS_PER_DAY == 0).all()
        and rows[STORE].dtype == np.int64
        and rows[PROMO].dtype == np.int64
    )


def requested_series(rows: pd.DataFrame) -> list[SeriesKey]:
    """Distinct (store_nbr, family) of canonical ``rows``, sorted like the canonical frame."""
    family = rows[FAMILY].cat
    n_families = len(family.categories)
    keys = np.unique(rows[STORE].to_numpy(np.int64) * n_families + family.codes.to_numpy())
    names = family.categories
    return [(int(k // n_families), str(names[k % n_families])) for k in keys.tolist()]


def panel_from_snapshot(snapshot: HistorySnapshot, series: Sequence[SeriesKey]) -> Panel:
    """Return the history of ``series`` (sorted) over the snapshot's complete days as a Panel.

    No frame is built: the arrays come straight from the snapshot. ``to_frame()`` of the result
    is the canonical frame :func:`select_history` gives for the same days (tested), and its
    ``log_sales`` are :func:`~retail_forecast.features.builder.panel_from_frame`'s of that frame.
    """
    idx = _snapshot_rows(snapshot, series)
    sales = snapshot.sales[idx]
    closed = snapshot.is_closed[idx]
    # as panel_from_frame: a data set's closure carries the last open day (not a demand of 0)
    log_sales = carry_over_closures(np.log1p(sales), closed)
    dtype, code = family_dtype(snapshot.families)
    keys = pd.DataFrame(
        {
            STORE: np.array([s for s, _ in series], dtype=np.int64),
            FAMILY: pd.Categorical.from_codes([code[f] for _, f in series], dtype=dtype),
        }
    )
    return Panel(
        keys=keys,
        dates=snapshot.date_index,
        log_sales=log_sales,
        promo=snapshot.onpromotion[idx].astype(np.float64),
        closed=closed,
        sales=sales,
    )


def _snapshot_rows(snapshot: HistorySnapshot, series: Sequence[SeriesKey]) -> npt.NDArray[np.intp]:
    try:
        return np.array([snapshot.index[key] for key in series], dtype=np.intp)
    except KeyError as exc:
        raise UnknownSeriesError(f"series {exc.args[0]} is not in the history store") from None


def select_history(
    history: pd.DataFrame, series: Sequence[SeriesKey], *, n_days: int, families: Sequence[str]
) -> pd.DataFrame:
    """Return the last ``n_days`` of ``series`` from a canonical frame, as the API builds it.

    Raises UnknownSeriesError when a series has no rows, DataValidationError when the days are
    not a complete panel.
    """
    end = pd.Timestamp(history[DATE].max())
    start = end - pd.Timedelta(days=n_days - 1)
    recent = history[history[DATE] >= start]
    keys = pd.MultiIndex.from_arrays([recent[STORE].to_numpy(np.int64), recent[FAMILY].astype(str)])
    wanted = pd.MultiIndex.from_tuples(list(series), names=[None, None])
    picked = recent[keys.isin(wanted)]
    out = pd.DataFrame(
        {
            DATE: pd.to_datetime(picked[DATE]).astype("datetime64[ns]").to_numpy(),
            STORE: picked[STORE].to_numpy(np.int64),
            FAMILY: pd.Categorical(picked[FAMILY].astype(str), categories=sorted(families)),
            TARGET: picked[TARGET].to_numpy(np.float64),
            PROMO: picked[PROMO].to_numpy(np.int64),
            IS_CLOSED: picked[IS_CLOSED].to_numpy(np.bool_),
        }
    )
    out = out.sort_values([STORE, FAMILY, DATE], kind="stable", ignore_index=True)
    days = min(n_days, int((end - pd.Timestamp(history[DATE].min())).days) + 1)
    found = len(out) // days if days else 0
    if found != len(series) or len(out) != days * len(series):
        present = set(requested_series(out))
        absent = [key for key in series if key not in present]
        if absent:
            raise UnknownSeriesError(f"no history for {len(absent)} series, e.g. {absent[:3]}")
        raise DataValidationError(f"the history is not a complete daily panel over {days} days")
    return out


def horizon_steps(rows: pd.DataFrame, history_end: pd.Timestamp) -> npt.NDArray[np.int64]:
    """Day of the horizon (1-based) of every row."""
    return days_after(rows[DATE].to_numpy(), history_end)
