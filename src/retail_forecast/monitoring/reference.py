"""Training-time reference profile of the features (reference.parquet) for drift checks.

The profile is one tidy frame with columns ``feature, stat, key, value`` so a single Parquet
file holds everything drift.py needs, without the raw training data:

- numeric feature: ``n``, ``nan_share``, ``mean``, ``std``, ``edge`` (interior quantile bin
  edges, key = bin number), ``share`` (share of values per bin, bins right-closed with open
  outer bins) and ``quantile`` (key = level; the sketch the Wasserstein distance uses);
- categorical feature: ``n``, ``nan_share`` and ``share`` per category (key = category);
- forecast-specific: ``zero_share`` / ``sales_level`` (mean log1p sales) / ``promo_share`` /
  ``promo_mean`` with stat ``all`` (key "")
  and ``family`` (key = family name); ``series`` / ``seen`` (key = ``"store|family"``);
- ``__meta__``: ``rows``, ``first_date`` / ``last_date`` (key = ISO date), ``schema_version``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from retail_forecast.closed_days import frame_yearly_closures
from retail_forecast.errors import DataValidationError
from retail_forecast.features.builder import FeatureBuilder, FeatureSpec, panel_from_frame
from retail_forecast.schema import DATE, FAMILY, IS_CLOSED, PROMO, STORE, TARGET
from retail_forecast.utils.io import write_parquet_atomic

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
PROFILE_COLUMNS = ("feature", "stat", "key", "value")
REFERENCE_FILE = "reference.parquet"
SCHEMA_VERSION = 1
LOG_SALES = "log_sales"
META, SERIES = "__meta__", "series"
ZERO_SHARE, PROMO_SHARE, PROMO_MEAN = "zero_share", "promo_share", "promo_mean"
SALES_LEVEL = "sales_level"  # mean log1p(sales)
DEFAULT_NUMERIC = ("lag_1", "lag_7", "lag_14", "roll_7_mean", "roll_14_mean", PROMO, LOG_SALES)
DEFAULT_CATEGORICAL = (STORE, FAMILY)
QUANTILE_LEVELS = 100


def quantile_levels(count: int = QUANTILE_LEVELS) -> FloatArray:
    """Mid-point probability levels (k + 0.5) / count of the quantile sketch."""
    return (np.arange(count, dtype=np.float64) + 0.5) / count


def bin_shares(values: FloatArray, edges: FloatArray) -> FloatArray:
    """Share of ``values`` in each right-closed bin (-inf, e0], (e0, e1], ..., (ek, inf)."""
    if len(values) == 0:
        return np.zeros(len(edges) + 1, dtype=np.float64)
    idx = np.searchsorted(edges, values, side="left")
    counts = np.bincount(idx, minlength=len(edges) + 1).astype(np.float64)
    return counts / float(len(values))


def series_key(store: object, family: object) -> str:
    return f"{int(store)}|{family}"  # type: ignore[call-overload]


def series_keys(frame: pd.DataFrame) -> set[str]:
    """Return the ``"store|family"`` keys of the series present in a frame."""
    pairs = frame[[STORE, FAMILY]].drop_duplicates()
    return {series_key(s, f) for s, f in zip(pairs[STORE], pairs[FAMILY].astype(str), strict=True)}


def window_features(
    sales: pd.DataFrame,
    *,
    start: pd.Timestamp | str | None = None,
    end: pd.Timestamp | str | None = None,
    preset: str = "required",
) -> pd.DataFrame:
    """Feature frame of the days ``start..end`` of a canonical sales frame (closed days dropped).

    Lags and rolling means come from the project's FeatureBuilder (log1p space), so they are
    the values the model sees; the days before ``start`` (up to the longest lag) are read as
    warm-up. Columns: date, store_nbr, family (str), the tabular features, sales, log_sales.
    """
    spec = FeatureSpec.named(preset)
    frame = sales
    first = pd.Timestamp(start) if start is not None else sales[DATE].min()
    last = pd.Timestamp(end) if end is not None else sales[DATE].max()
    warm = first - pd.Timedelta(days=spec.lookback)
    frame = frame[(frame[DATE] >= warm) & (frame[DATE] <= last)]
    if frame.empty:
        return pd.DataFrame(columns=[DATE, STORE, FAMILY, *spec.numeric_names, PROMO, TARGET])
    panel = panel_from_frame(frame)
    first_day = int(np.searchsorted(panel.dates.to_numpy(), first.to_datetime64()))
    builder = FeatureBuilder.from_frame(frame, spec, yearly_closures=frame_yearly_closures(sales))
    matrix = builder.panel_features(panel, first_day=first_day)
    n_days = len(panel.dates) - first_day
    out = pd.DataFrame(matrix.astype(np.float64), columns=builder.feature_names)
    out[STORE] = np.repeat(panel.keys[STORE].to_numpy(dtype=np.int64), n_days)
    out[FAMILY] = np.repeat(panel.keys[FAMILY].astype(str).to_numpy(), n_days)
    out.insert(0, DATE, np.tile(panel.dates[first_day:].to_numpy(), panel.n_series))
    log_sales = panel.log_sales[:, first_day:].ravel()
    out[LOG_SALES] = log_sales
    out[TARGET] = np.expm1(log_sales)
    keep = ~panel.closed[:, first_day:].ravel()
    return out[keep].reset_index(drop=True)


def decode_features(matrix: npt.NDArray[np.floating], builder: FeatureBuilder) -> pd.DataFrame:
    """Turn FeatureBuilder rows (category codes) into a drift window (store_nbr, family names).

    For served requests: log the rows the predictor built, then check them with check_drift.
    """
    out = pd.DataFrame(np.asarray(matrix, dtype=np.float64), columns=builder.feature_names)
    stores = np.asarray(builder.stores, dtype=np.int64)
    families = np.asarray(builder.families, dtype=object)
    out[STORE] = stores[out[STORE].to_numpy(dtype=np.int64)]
    out[FAMILY] = families[out[FAMILY].to_numpy(dtype=np.int64)]
    return out


def _numeric_rows(name: str, raw: pd.Series, *, bins: int) -> list[tuple[str, str, str, float]]:
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    finite = values[np.isfinite(values)]
    rows = [(name, "kind", "numeric", 0.0), (name, "n", "", float(len(finite)))]
    rows.append((name, "nan_share", "", 1.0 - len(finite) / len(values) if len(values) else 1.0))
    if len(finite) == 0:
        return rows
    rows += [(name, "mean", "", float(finite.mean())), (name, "std", "", float(finite.std()))]
    inner = np.linspace(0.0, 1.0, bins + 1)[1:-1]
    edges = np.unique(np.quantile(finite, inner))
    rows += [(name, "edge", f"{i:03d}", float(e)) for i, e in enumerate(edges)]
    shares = bin_shares(finite, edges)
    rows += [(name, "share", f"{i:03d}", float(s)) for i, s in enumerate(shares)]
    levels = quantile_levels()
    sketch = np.quantile(finite, levels)
    rows += [(name, "quantile", f"{q:.4f}", float(v)) for q, v in zip(levels, sketch, strict=True)]
    return rows


def _categorical_rows(name: str, raw: pd.Series) -> list[tuple[str, str, str, float]]:
    present = raw.dropna()
    rows = [(name, "kind", "categorical", 0.0), (name, "n", "", float(len(present)))]
    rows.append((name, "nan_share", "", 1.0 - len(present) / len(raw) if len(raw) else 1.0))
    shares = present.astype(str).value_counts(normalize=True, sort=False)
    rows += [(name, "share", str(k), float(v)) for k, v in shares.items()]
    return rows


def forecast_stats(frame: pd.DataFrame) -> dict[str, tuple[float, dict[str, float]]]:
    """Zero-sales share, sales level and promotion intensity, overall and per family."""
    out: dict[str, tuple[float, dict[str, float]]] = {}
    columns: dict[str, pd.Series] = {}
    if TARGET in frame or LOG_SALES in frame:
        sales = frame[TARGET] if TARGET in frame else np.expm1(frame[LOG_SALES])
        sales = pd.to_numeric(sales, errors="coerce").astype(np.float64)
        columns[ZERO_SHARE] = sales.eq(0).astype(np.float64).where(sales.notna())
        columns[SALES_LEVEL] = pd.Series(np.log1p(sales.clip(lower=0).to_numpy()), sales.index)
    if PROMO in frame:
        promo = pd.to_numeric(frame[PROMO], errors="coerce").astype(np.float64)
        columns[PROMO_SHARE] = promo.gt(0).astype(np.float64).where(promo.notna())
        columns[PROMO_MEAN] = promo
    for name, column in columns.items():
        per_family: dict[str, float] = {}
        if FAMILY in frame and len(frame):
            grouped = column.groupby(frame[FAMILY].astype(str).to_numpy()).mean()
            per_family = {str(k): float(v) for k, v in grouped.items()}
        overall = float(column.mean()) if column.notna().any() else float("nan")
        out[name] = (overall, per_family)
    return out


def build_reference(
    frame: pd.DataFrame,
    *,
    numeric: Sequence[str] = DEFAULT_NUMERIC,
    categorical: Sequence[str] = DEFAULT_CATEGORICAL,
    bins: int = 20,
) -> pd.DataFrame:
    """Profile a feature frame (or a canonical sales window) into the tidy reference frame.

    A canonical frame (it has ``is_closed`` and lacks a requested feature) is first turned
    into features with :func:`window_features` (its first days have NaN lags, which only
    raise ``nan_share``; use :func:`reference_from_sales` to read warm-up days).
    """
    wanted = [*numeric, *categorical]
    if IS_CLOSED in frame and any(name not in frame for name in wanted):
        frame = window_features(frame)
    if frame.empty:
        raise DataValidationError("cannot build a reference profile from an empty frame")
    missing = [name for name in wanted if name not in frame]
    if missing:
        raise DataValidationError(f"reference frame lacks columns {missing}")
    rows: list[tuple[str, str, str, float]] = [
        (META, "rows", "", float(len(frame))),
        (META, "schema_version", "", float(SCHEMA_VERSION)),
    ]
    if DATE in frame:
        dates = pd.to_datetime(frame[DATE])
        rows.append((META, "first_date", str(dates.min().date()), 0.0))
        rows.append((META, "last_date", str(dates.max().date()), 0.0))
    for name in numeric:
        rows += _numeric_rows(name, frame[name], bins=bins)
    for name in categorical:
        rows += _categorical_rows(name, frame[name])
    for name, (overall, per_family) in forecast_stats(frame).items():
        rows.append((name, "all", "", overall))
        rows += [(name, "family", fam, v) for fam, v in sorted(per_family.items())]
    if STORE in frame and FAMILY in frame:
        rows += [(SERIES, "seen", key, 1.0) for key in sorted(series_keys(frame))]
    profile = pd.DataFrame(rows, columns=list(PROFILE_COLUMNS))
    profile["value"] = profile["value"].astype(np.float64)
    logger.info(
        "reference profile rows=%d numeric=%d categorical=%d",
        len(frame),
        len(numeric),
        len(categorical),
    )
    return profile


def reference_from_sales(
    sales: pd.DataFrame,
    *,
    days: int = 90,
    end: pd.Timestamp | str | None = None,
    bins: int = 20,
) -> pd.DataFrame:
    """Profile the last ``days`` days up to ``end`` of a canonical frame (with warm-up)."""
    last = pd.Timestamp(end) if end is not None else sales[DATE].max()
    first = last - pd.Timedelta(days=days - 1)
    return build_reference(window_features(sales, start=first, end=last), bins=bins)


def write_reference(
    directory: Path,
    sales: pd.DataFrame,
    *,
    days: int = 90,
    bins: int = 20,
    end: pd.Timestamp | str | None = None,
) -> Path:
    """Profile the last ``days`` training days into ``directory/reference.parquet`` (train)."""
    path = Path(directory) / REFERENCE_FILE
    write_parquet_atomic(path, reference_from_sales(sales, days=days, end=end, bins=bins))
    return path


@dataclass(frozen=True)
class NumericProfile:
    """One numeric feature's stored distribution."""

    n: int
    nan_share: float
    mean: float
    std: float
    edges: FloatArray
    shares: FloatArray
    quantiles: FloatArray


@dataclass(frozen=True)
class ReferenceProfile:
    """The parsed reference.parquet: what drift.py compares a window with."""

    rows: int
    first_date: str | None
    last_date: str | None
    numeric: dict[str, NumericProfile]
    categorical: dict[str, dict[str, float]]
    forecast: dict[str, tuple[float, dict[str, float]]]
    series: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_frame(cls, profile: pd.DataFrame) -> ReferenceProfile:
        missing = [c for c in PROFILE_COLUMNS if c not in profile]
        if missing:
            raise DataValidationError(f"reference profile lacks columns {missing}")
        groups = {name: g for name, g in profile.groupby("feature", sort=False)}
        meta = _stat_map(groups.get(META))
        dates = _keys(groups.get(META))
        numeric: dict[str, NumericProfile] = {}
        categorical: dict[str, dict[str, float]] = {}
        forecast: dict[str, tuple[float, dict[str, float]]] = {}
        for name, group in groups.items():
            kind = _keys(group).get("kind")
            if kind == "numeric":
                numeric[str(name)] = _numeric_profile(group)
            elif kind == "categorical":
                shares = group[group["stat"] == "share"]
                categorical[str(name)] = dict(zip(shares["key"], shares["value"], strict=True))
            elif "all" in set(group["stat"]):
                fam = group[group["stat"] == "family"]
                overall = float(group.loc[group["stat"] == "all", "value"].iloc[0])
                forecast[str(name)] = (overall, dict(zip(fam["key"], fam["value"], strict=True)))
        seen = groups.get(SERIES)
        return cls(
            rows=int(meta.get("rows", 0.0)),
            first_date=dates.get("first_date"),
            last_date=dates.get("last_date"),
            numeric=numeric,
            categorical=categorical,
            forecast=forecast,
            series=frozenset(seen["key"]) if seen is not None else frozenset(),
        )


def _stat_map(group: pd.DataFrame | None) -> dict[str, float]:
    if group is None:
        return {}
    return {str(s): float(v) for s, v in zip(group["stat"], group["value"], strict=True)}


def _keys(group: pd.DataFrame | None) -> dict[str, str]:
    if group is None:
        return {}
    return {str(s): str(k) for s, k in zip(group["stat"], group["key"], strict=True)}


def _numeric_profile(group: pd.DataFrame) -> NumericProfile:
    stats = _stat_map(group[~group["stat"].isin(["edge", "share", "quantile"])])

    def ordered(stat: str) -> FloatArray:
        part = group[group["stat"] == stat].sort_values("key")
        return part["value"].to_numpy(dtype=np.float64)

    return NumericProfile(
        n=int(stats.get("n", 0.0)),
        nan_share=stats.get("nan_share", 1.0),
        mean=stats.get("mean", float("nan")),
        std=stats.get("std", float("nan")),
        edges=ordered("edge"),
        shares=ordered("share"),
        quantiles=ordered("quantile"),
    )
