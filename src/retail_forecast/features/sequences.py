"""(input window, horizon) arrays for the LSTM."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from retail_forecast.errors import DataValidationError
from retail_forecast.features.builder import silent_series
from retail_forecast.features.calendar import calendar_columns
from retail_forecast.schema import DATE, FAMILY, IS_CLOSED, PROMO, STORE, TARGET

FloatArray = npt.NDArray[np.float64]
F32Array = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

# Channel layout of the encoder tensor [batch, window, len(ENCODER_FEATURES)]. The network reads
# channels by these positions, so the order is part of the saved feature spec.
ENCODER_FEATURES: Final = (
    "sales_scaled",  # (log1p(sales) - mean) / std of the series; 0 before its first sale
    "before_first_sale",  # 1 until the series' first sale inside the window (store openings)
    "store_index",  # position in the store vocabulary (an embedding index)
    "family_index",  # position in the family vocabulary (an embedding index)
    "onpromotion_log1p",
    "is_closed",
    "day_of_week",  # Monday = 0
    "month",  # 1..12
    "year_offset",  # year - YEAR_OFFSET
    "day_of_month",  # 1..31
)
# Channel layout of the known-future tensor [batch, horizon, len(FUTURE_FEATURES)].
FUTURE_FEATURES: Final = (
    "onpromotion_log1p",
    "is_closed",
    "day_of_week",
    "month",
    "year_offset",
    "day_of_month",
)
ENC: Final = {name: i for i, name in enumerate(ENCODER_FEATURES)}
FUT: Final = {name: i for i, name in enumerate(FUTURE_FEATURES)}
YEAR_OFFSET: Final = 2015


@dataclass(frozen=True)
class SeriesPanel:
    """A dense [series, day] view of a sales frame over a fixed vocabulary.

    ``series_index`` holds, per row of the arrays, the flat series position
    ``store_pos * n_families + family_pos``; days without a row are NaN sales / 0 promotion.
    """

    dates: pd.DatetimeIndex
    store_pos: IntArray
    family_pos: IntArray
    log_sales: FloatArray  # [n_series, n_days], NaN where the frame had no row
    promo: FloatArray  # [n_series, n_days] raw onpromotion, 0 where missing
    closed: BoolArray  # [n_series, n_days]
    calendar: FloatArray  # [n_days, 4] from calendar_array

    @property
    def n_series(self) -> int:
        return int(self.log_sales.shape[0])

    @property
    def n_days(self) -> int:
        return int(self.log_sales.shape[1])


def vocab_positions(
    values: npt.ArrayLike, vocabulary: list[str] | list[int], what: str
) -> IntArray:
    """Map values to positions in ``vocabulary``; unknown values raise DataValidationError."""
    index = pd.Index(vocabulary)
    pos = np.asarray(index.get_indexer(pd.Index(np.asarray(values))), dtype=np.int64)
    if (pos < 0).any():
        unknown = sorted({str(v) for v, p in zip(np.asarray(values), pos, strict=True) if p < 0})
        raise DataValidationError(f"{what} not in the model's vocabulary: {unknown[:10]}")
    return pos


def day_numbers(dates: pd.Series) -> IntArray:
    """Days since 1970-01-01 per row (times of day dropped), without building a pandas Series."""
    values = dates.to_numpy()
    if not np.issubdtype(values.dtype, np.datetime64):
        values = pd.to_datetime(dates).to_numpy()
    return np.asarray(values.astype("datetime64[D]").astype(np.int64), dtype=np.int64)


def day_timestamp(day: int) -> pd.Timestamp:
    """Return the midnight Timestamp of a :func:`day_numbers` value."""
    return pd.Timestamp(np.datetime64(day, "D"))


def build_panel(
    frame: pd.DataFrame, *, stores: list[int], families: list[str], end: pd.Timestamp | None = None
) -> SeriesPanel:
    """Scatter a canonical sales frame into dense [series, day] arrays (vectorised).

    Only the series present in ``frame`` get a row; days run from the frame's first date to
    ``end`` (default: its last date). Unknown stores or families raise DataValidationError.
    """
    if frame.empty:
        raise DataValidationError("sales history is empty")
    days = day_numbers(frame[DATE])
    first = int(days.min())
    last = int(days.max()) if end is None else int(day_numbers(pd.Series([end]))[0])
    dates = pd.date_range(day_timestamp(first), day_timestamp(last), freq="D")
    store_pos = vocab_positions(frame[STORE].to_numpy(), stores, STORE)
    family_pos = vocab_positions(frame[FAMILY].astype(str).to_numpy(), families, FAMILY)
    flat = store_pos * len(families) + family_pos
    uniq, row = np.unique(flat, return_inverse=True)
    col = days - first
    shape = (len(uniq), len(dates))
    log_sales = np.full(shape, np.nan)
    log_sales[row, col] = np.log1p(np.clip(frame[TARGET].to_numpy(dtype=np.float64), 0, None))
    promo = np.zeros(shape)
    promo[row, col] = frame[PROMO].to_numpy(dtype=np.float64)
    closed = np.zeros(shape, dtype=np.bool_)
    if IS_CLOSED in frame.columns:
        closed[row, col] |= frame[IS_CLOSED].to_numpy(dtype=bool)
    return SeriesPanel(
        dates=dates,
        store_pos=uniq // len(families),
        family_pos=uniq % len(families),
        log_sales=log_sales,
        promo=promo,
        closed=closed,
        calendar=calendar_array(dates),
    )


def calendar_array(dates: pd.DatetimeIndex) -> FloatArray:
    """Per-day [n_days, 4] calendar: day_of_week, month, year - YEAR_OFFSET, day of month."""
    cal = calendar_columns(dates)
    day = dates.day.to_numpy(dtype=np.float64)
    columns = [cal["day_of_week"], cal["month"], cal["year"] - YEAR_OFFSET, day]
    return np.stack(columns, axis=1).astype(np.float64)


def window_index(origins: IntArray, *, start: int, length: int) -> IntArray:
    """Day indices [len(origins), length]: ``origin + start + k`` for k in 0..length-1."""
    return np.asarray(origins, dtype=np.int64)[:, None] + np.arange(start, start + length)


def encoder_array(
    panel_z: FloatArray,
    panel: SeriesPanel,
    *,
    rows: IntArray,
    origins: IntArray,
    window: int,
) -> F32Array:
    """Build the encoder tensor [batch, window, features] for windows ending at ``origins``.

    ``panel_z`` is the scaled log1p sales of ``panel`` (NaN where unknown). Days before the
    panel's first day count as "before the first sale" (padding), so short histories work.
    """
    idx = window_index(origins, start=1 - window, length=window)
    valid = idx >= 0
    safe = np.where(valid, idx, 0)
    r = np.asarray(rows, dtype=np.int64)[:, None]
    z = np.where(valid, panel_z[r, safe], np.nan)
    sold = np.where(valid, panel.log_sales[r, safe] > 0, False)
    started = np.maximum.accumulate(sold, axis=1)
    cal = panel.calendar[safe]
    out = np.empty((*idx.shape, len(ENCODER_FEATURES)), dtype=np.float32)
    out[..., ENC["sales_scaled"]] = np.where(started & np.isfinite(z), z, 0.0)
    out[..., ENC["before_first_sale"]] = ~started
    out[..., ENC["store_index"]] = panel.store_pos[rows][:, None]
    out[..., ENC["family_index"]] = panel.family_pos[rows][:, None]
    out[..., ENC["onpromotion_log1p"]] = np.where(valid, np.log1p(panel.promo[r, safe]), 0.0)
    out[..., ENC["is_closed"]] = np.where(valid, panel.closed[r, safe], False)
    out[..., ENC["day_of_week"]] = cal[..., 0]
    out[..., ENC["month"]] = cal[..., 1]
    out[..., ENC["year_offset"]] = cal[..., 2]
    out[..., ENC["day_of_month"]] = cal[..., 3]
    return out


def future_array(promo: FloatArray, *, calendar: FloatArray, closed: BoolArray) -> F32Array:
    """Known-future tensor [batch, horizon, features].

    ``promo`` is the raw onpromotion [batch, horizon]; ``calendar`` ([batch or 1, horizon, 4],
    from calendar_array) and ``closed`` ([batch or 1, horizon]) describe the horizon's days.
    """
    out = np.empty((*promo.shape, len(FUTURE_FEATURES)), dtype=np.float32)
    out[..., FUT["onpromotion_log1p"]] = np.log1p(promo)
    out[..., FUT["is_closed"]] = closed
    out[..., FUT["day_of_week"]] = calendar[..., 0]
    out[..., FUT["month"]] = calendar[..., 1]
    out[..., FUT["year_offset"]] = calendar[..., 2]
    out[..., FUT["day_of_month"]] = calendar[..., 3]
    return out


def sample_windows(
    *,
    eligible: BoolArray,
    n: int,
    day_weights: FloatArray,
    rng: np.random.Generator,
) -> tuple[IntArray, IntArray]:
    """Draw ``n`` (row, origin) pairs among ``eligible`` [series, day] cells.

    Origins are drawn with probability proportional to ``day_weights`` (e.g. favouring recent
    days), rows uniformly; the draw is vectorised over a flat index of the eligible cells.
    """
    weights = eligible * day_weights[None, :]
    flat = weights.ravel()
    total = flat.sum()
    if total <= 0:
        raise DataValidationError("no eligible training windows (history too short?)")
    cells = rng.choice(flat.size, size=n, replace=True, p=flat / total)
    rows, origins = np.divmod(cells, eligible.shape[1])
    return rows.astype(np.int64), origins.astype(np.int64)


def recent_sales(panel: SeriesPanel, days: int) -> BoolArray:
    """[series, day]: True where the series sold something in the ``days`` days up to the day."""
    sold = np.nan_to_num(panel.log_sales) > 0
    csum = np.concatenate([np.zeros((panel.n_series, 1)), np.cumsum(sold, axis=1)], axis=1)
    lagged = np.concatenate([np.zeros((panel.n_series, days)), csum], axis=1)[:, : csum.shape[1]]
    return np.asarray((csum - lagged)[:, 1:] > 0)


def dead_series(panel: SeriesPanel, days: int) -> BoolArray:
    """[series]: the dead-series rule over the last ``days`` days (builder.silent_series)."""
    return silent_series(np.nan_to_num(panel.log_sales[:, -days:]), panel.closed[:, -days:])


def fit_scaler(
    panel: SeriesPanel, *, end: int, days: int, min_std: float
) -> tuple[FloatArray, FloatArray]:
    """Return per-series mean/std of log1p sales over days [end - days, end).

    Only open days after the series' first sale count; series without any get mean 0, std 1.
    """
    start = max(0, end - days)
    ls = panel.log_sales[:, :end]
    started = np.maximum.accumulate(np.nan_to_num(ls) > 0, axis=1)
    use = (started & ~panel.closed[:, :end] & np.isfinite(ls))[:, start:]
    vals = np.where(use, ls[:, start:], 0.0)
    count = use.sum(axis=1)
    mean = vals.sum(axis=1) / np.maximum(count, 1)
    var = (np.where(use, vals - mean[:, None], 0.0) ** 2).sum(axis=1) / np.maximum(count, 1)
    std = np.maximum(np.sqrt(var), min_std)
    return np.where(count > 0, mean, 0.0), np.where(count > 0, std, 1.0)


def training_arrays(
    z: FloatArray,
    panel: SeriesPanel,
    *,
    rows: IntArray,
    origins: IntArray,
    window: int,
    horizon: int,
    std: FloatArray,
) -> tuple[F32Array, F32Array, FloatArray, FloatArray]:
    """Return (x_enc, x_fut, target, weight) for windows ending at ``origins``.

    Targets are the scaled sales of the ``horizon`` days after each origin; closed or unknown days
    get weight 0, the others ``std**2`` of their series, which turns MSE on scaled values back
    into MSE on log1p sales (the square of RMSLE).
    """
    x_enc = encoder_array(z, panel, rows=rows, origins=origins, window=window)
    idx = window_index(origins, start=1, length=horizon)
    r = rows[:, None]
    closed = panel.closed[r, idx]
    x_fut = future_array(panel.promo[r, idx], calendar=panel.calendar[idx], closed=closed)
    target = z[r, idx]
    keep = np.isfinite(target) & ~closed
    weight = np.where(keep, std[rows][:, None] ** 2, 0.0)
    return x_enc, x_fut, np.where(keep, target, 0.0), weight


def check_net_inputs(
    x_enc: F32Array,
    x_fut: F32Array,
    *,
    window: int,
    horizon: int,
    n_stores: int,
    n_families: int,
) -> None:
    """Raise DataValidationError unless the arrays match the layout and index ranges."""
    if x_enc.ndim != 3 or x_enc.shape[1:] != (window, len(ENCODER_FEATURES)):
        raise DataValidationError(
            f"x_enc must be [batch, {window}, {len(ENCODER_FEATURES)}], got {x_enc.shape}"
        )
    if x_fut.shape != (x_enc.shape[0], horizon, len(FUTURE_FEATURES)):
        raise DataValidationError(
            f"x_fut must be [batch, {horizon}, {len(FUTURE_FEATURES)}], got {x_fut.shape}"
        )
    if not (np.isfinite(x_enc).all() and np.isfinite(x_fut).all()):
        raise DataValidationError("inputs must be finite")
    ranges = {
        "store_index": (0, n_stores - 1),
        "family_index": (0, n_families - 1),
        "day_of_week": (0, 6),
        "month": (1, 12),
        "day_of_month": (1, 31),
    }
    for name, (lo, hi) in ranges.items():
        for values in (x_enc[..., ENC[name]], x_fut[..., FUT[name]] if name in FUT else None):
            if values is not None and ((values < lo) | (values > hi) | (values % 1 != 0)).any():
                raise DataValidationError(f"{name} must be an integer in {lo}..{hi}")
