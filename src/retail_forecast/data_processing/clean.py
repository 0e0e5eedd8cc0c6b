"""Complete the daily panel into the canonical sales frame; fingerprint frames.

Filling rules (every series gets every day from the first to the last date of the data):
- a day on which no series has a row at all (the whole chain closed: the Kaggle Favorita file
  has no 25 December) becomes ``sales 0, onpromotion 0, is_closed True`` for every series;
- a day the data set closes itself (a row with ``open`` 0, or a ``Closed`` row of the holidays
  table for the store's scope: :func:`~retail_forecast.data_processing.panel_shape.closed_matrix`)
  is ``is_closed True`` whether its row is there or not (an absent one gets sales 0);
- any other missing day (a series that starts late, a quarantined row) becomes
  ``sales 0, onpromotion 0, is_closed False``, since in this data an absent row means no sales.
  Their count is reported (``filled_open_rows``) so a large number is visible.
Without an ``open`` column and Closed holidays rows the chain-wide days are the only closures.
A series is a (store_nbr, family) pair with at least one valid row.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from retail_forecast.closed_days import NO_YEARLY_CLOSURES, YearlyClosures
from retail_forecast.data_processing.panel_shape import OPEN, closed_matrix
from retail_forecast.schema import (
    CANONICAL_COLUMNS,
    DATE,
    FAMILY,
    IS_CLOSED,
    PROMO,
    SORT_KEYS,
    STORE,
    TARGET,
)

DAY_NS = np.int64(86_400 * 10**9)


@dataclass(frozen=True)
class PanelStats:
    """What completing the panel added."""

    series: int
    days: int
    filled_closed_rows: int
    filled_open_rows: int


def empty_canonical(families: Sequence[str]) -> pd.DataFrame:
    """Return a canonical frame with no rows (for unusable data)."""
    return pd.DataFrame(
        {
            DATE: pd.Series([], dtype="datetime64[ns]"),
            STORE: pd.Series([], dtype=np.int64),
            FAMILY: pd.Categorical([], categories=sorted(families)),
            TARGET: pd.Series([], dtype=np.float64),
            PROMO: pd.Series([], dtype=np.int64),
            IS_CLOSED: pd.Series([], dtype=bool),
        }
    )


def complete_panel(
    rows: pd.DataFrame,
    *,
    holidays: pd.DataFrame | None = None,
    stores: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, PanelStats]:
    """Turn valid, de-duplicated train rows into the canonical sales frame (schema.py).

    ``holidays`` and ``stores`` (the Kaggle tables) scope the holidays' Closed rows.
    """
    family = rows[FAMILY].cat
    categories = [str(c) for c in family.categories]
    if categories != sorted(categories):
        raise ValueError("family categories must be sorted")
    if len(rows) == 0:
        return empty_canonical(categories), PanelStats(0, 0, 0, 0)
    day = rows[DATE].to_numpy(dtype="datetime64[ns]").view(np.int64) // DAY_NS
    first, last = int(day.min()), int(day.max())
    n_days = last - first + 1
    n_fam = max(len(categories), 1)
    store = rows[STORE].to_numpy(dtype=np.int64)
    store_min = int(store.min())
    series_key = (store - store_min) * n_fam + family.codes.to_numpy().astype(np.int64)
    present = np.bincount(series_key) > 0  # stores x families: a small, dense key space
    series = np.flatnonzero(present).astype(np.int64)
    inverse = (np.cumsum(present) - 1)[series_key]
    pos = inverse.astype(np.int64) * n_days + (day - first)
    size = len(series) * n_days
    sales = np.zeros(size, dtype=np.float64)
    promo = np.zeros(size, dtype=np.int64)
    observed = np.zeros(size, dtype=bool)
    sales[pos] = rows[TARGET].to_numpy(dtype=np.float64)
    promo[pos] = rows[PROMO].to_numpy(dtype=np.int64)
    observed[pos] = True
    days = np.arange(first, last + 1, dtype=np.int64).astype("datetime64[D]")
    chain_shut = np.bincount(day - first, minlength=n_days) == 0  # no row in any series
    closed_rows = np.tile(chain_shut, len(series))
    is_closed = closed_rows.copy()
    store_of = series // n_fam + store_min
    own = _own_closures(rows, pos, size, store_of, (first, n_days), holidays, stores)
    if own is not None:
        is_closed |= own
        closed_rows |= own
    frame = pd.DataFrame(
        {
            DATE: np.tile(days.astype("datetime64[ns]"), len(series)),
            STORE: np.repeat(store_of, n_days).astype(np.int64),
            FAMILY: pd.Categorical.from_codes(
                np.repeat(series % n_fam, n_days).astype(np.int32),
                categories=pd.Index(categories, dtype=object),
            ),
            TARGET: sales,
            PROMO: promo,
            IS_CLOSED: is_closed,
        },
        columns=list(CANONICAL_COLUMNS),
        copy=False,
    )
    stats = PanelStats(
        series=len(series),
        days=n_days,
        filled_closed_rows=int((~observed & is_closed).sum()),
        filled_open_rows=int((~observed & ~closed_rows).sum()),
    )
    return frame, stats


def _own_closures(
    rows: pd.DataFrame,
    pos: npt.NDArray[np.int64],
    size: int,
    store_of: npt.NDArray[np.int64],
    span: tuple[int, int],
    holidays: pd.DataFrame | None,
    stores: pd.DataFrame | None,
) -> npt.NDArray[np.bool_] | None:
    """Return the data set's own closed cells (series-major, like the panel) or None.

    None keeps the frame of a data set without closures of its own exactly as it was.
    """
    first, n_days = span
    own: npt.NDArray[np.bool_] | None = None
    if OPEN in rows.columns:
        own = np.zeros(size, dtype=bool)
        own[pos] = rows[OPEN].to_numpy() == 0
    shut = closed_matrix(store_of, first, n_days, holidays=holidays, store_table=stores)
    if shut.any():
        own = shut.reshape(-1) if own is None else own | shut.reshape(-1)
    return own


def mark_future_closures(
    test: pd.DataFrame,
    *,
    holidays: pd.DataFrame | None,
    stores: pd.DataFrame | None,
    yearly: YearlyClosures = NO_YEARLY_CLOSURES,
) -> pd.DataFrame:
    """Add ``is_closed`` to the rows to forecast when the data closes some of them.

    An ``open`` 0 row, a Closed holidays row for the store's scope or one of the history's
    ``yearly`` closures closes it, unless the row says ``open`` 1; a test table with none of
    them is returned as it is.
    """
    if len(test) == 0:
        return test
    day = test[DATE].to_numpy(dtype="datetime64[D]").astype(np.int64)
    first = int(day.min())
    store = test[STORE].to_numpy(dtype=np.int64)
    shut = closed_matrix(
        store, first, int(day.max()) - first + 1, holidays=holidays, store_table=stores
    )
    closed = shut[np.arange(len(test)), day - first] | yearly.mask(test[DATE].to_numpy())
    if OPEN in test.columns:  # the file's own flag wins over what the history taught
        flag = test[OPEN].to_numpy()
        closed = (closed & (flag != 1)) | (flag == 0)
    elif not closed.any():
        return test
    return test.assign(**{IS_CLOSED: closed})


def _sort_arrays(frame: pd.DataFrame, columns: Sequence[str]) -> list[npt.NDArray[np.generic]]:
    arrays: list[npt.NDArray[np.generic]] = []
    for name in columns:
        col = frame[name]
        if isinstance(col.dtype, pd.CategoricalDtype):
            arrays.append(col.cat.codes.to_numpy())
        elif pd.api.types.is_datetime64_any_dtype(col.dtype):
            arrays.append(col.to_numpy(dtype="datetime64[ns]").view(np.int64))
        elif pd.api.types.is_numeric_dtype(col.dtype):
            arrays.append(col.to_numpy())
        else:
            arrays.append(pd.factorize(col.astype(str), sort=True)[0])
    return arrays


def _is_sorted(arrays: list[npt.NDArray[np.generic]]) -> bool:
    """Lexicographic non-decreasing order, checked without sorting."""
    if not arrays or len(arrays[0]) < 2:
        return True
    undecided = np.ones(len(arrays[0]) - 1, dtype=bool)
    for arr in arrays:
        nxt, prev = arr[1:], arr[:-1]
        if (undecided & np.less(nxt, prev)).any():
            return False
        undecided &= np.equal(nxt, prev)
    return True


def sort_canonical(frame: pd.DataFrame, keys: Sequence[str] = SORT_KEYS) -> pd.DataFrame:
    """Sort by ``keys`` (then every other column); a no-op copy-free return when sorted."""
    order_cols = [k for k in keys if k in frame.columns]
    order_cols += [c for c in frame.columns if c not in order_cols]
    arrays = _sort_arrays(frame, order_cols)
    if _is_sorted(arrays):
        return frame
    order = np.lexsort(list(reversed(arrays)))
    return frame.iloc[order].reset_index(drop=True)


def _column_bytes(col: pd.Series) -> bytes:
    if isinstance(col.dtype, pd.CategoricalDtype):
        categories = json.dumps([str(c) for c in col.cat.categories]).encode("utf-8")
        codes = col.cat.codes.to_numpy().astype("<i4")
        return categories + b"\0" + codes.tobytes()
    if pd.api.types.is_datetime64_any_dtype(col.dtype):
        return col.to_numpy(dtype="datetime64[ns]").view("<i8").tobytes()
    if pd.api.types.is_bool_dtype(col.dtype):
        return col.to_numpy(dtype=np.uint8).tobytes()
    if pd.api.types.is_integer_dtype(col.dtype):
        return col.to_numpy(dtype="<i8").tobytes()
    if pd.api.types.is_float_dtype(col.dtype):
        return col.to_numpy(dtype="<f8").tobytes()
    return json.dumps([None if pd.isna(v) else str(v) for v in col]).encode("utf-8")


def fingerprint(frame: pd.DataFrame, keys: Sequence[str] = SORT_KEYS) -> str:
    """sha256 of a frame sorted by key: column names, dtypes and each column's bytes in order.

    Independent of row order and of how the input was split into files; any changed value,
    dtype or column changes it. Numeric columns are hashed as little-endian numpy bytes,
    categoricals as their category list plus int32 codes (not pandas' version-dependent
    ``hash_pandas_object``).
    """
    ordered = sort_canonical(frame, keys)
    digest = hashlib.sha256()
    digest.update(f"rows={len(ordered)}\n".encode())
    for name in ordered.columns:
        col = ordered[name]
        digest.update(f"{name}:{col.dtype}\n".encode())
        digest.update(_column_bytes(col))
    return digest.hexdigest()
