"""FeatureBuilder: one code path for training features and for recursive serving features.

The canonical sales frame is a complete daily panel sorted by (store_nbr, family, date), so it
is reshaped into (series, day) arrays: row boundaries are series boundaries and every lag is a
column shift that never crosses a series start (NaN there). Lags and rolling means are computed
on log1p(sales), the target the models learn. Features of day t read only days <= t-1 of the
sales array; onpromotion and the calendar of day t are known in advance (promo means read the
onpromotion of days <= t: the recursion gets it as ``promo_window``, :func:`promo_history`).

Training calls :meth:`FeatureBuilder.panel_features` (all days at once); the recursion calls
:meth:`FeatureBuilder.day_features` (one day for all series) on a window whose last filled
column is the previous day. A day the data set closes itself carries the last open day's
demand in that array (:func:`carry_over_closures`), not a sales 0. Both run the same
element-wise arithmetic in the same order, so their values are bit-identical (tested).

Which columns: a :class:`FeatureSpec`, the data of a ``FeatureConfig`` (lags, rolling means,
seasonal means, promo means, date features), recorded in the bundle; config.py holds the
defaults and the ``FEATURE_PRESETS``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import ValidationError

from retail_forecast.bundle_contents import LEGACY_YEARLY_CLOSURES
from retail_forecast.closed_days import NO_YEARLY_CLOSURES, YearlyClosures, frame_yearly_closures
from retail_forecast.config import FEATURE_PRESETS, FeatureConfig
from retail_forecast.errors import DataValidationError, UnknownSeriesError
from retail_forecast.features.calendar import calendar_columns, extra_calendar_columns
from retail_forecast.features.keys import family_positions
from retail_forecast.features.lags import FloatArray, recent_days, shift_days
from retail_forecast.features.rolling import (
    rolling_means,
    rolling_means_at,
    seasonal_mean,
    seasonal_means_at,
    trailing_means,
    trailing_means_at,
)
from retail_forecast.schema import DATE, FAMILY, IS_CLOSED, PROMO, STORE, TARGET

CATEGORICAL = (STORE, FAMILY)
CALENDAR = ("day_of_week", "month", "year")  # a named-set spec's date features (from_dict)
DAY_CALENDAR_CACHE = 4096


@dataclass(frozen=True)
class FeatureSpec:
    """The feature columns a :class:`FeatureConfig` declares, in matrix order (see there)."""

    lags: tuple[int, ...]
    rolling_means: tuple[int, ...]
    seasonal_means: tuple[int, ...]
    date_features: tuple[str, ...]
    promo_means: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        _validated(self.to_dict())

    @classmethod
    def from_config(cls, config: FeatureConfig) -> FeatureSpec:
        return cls(
            config.lags,
            config.rolling_means,
            config.seasonal_means,
            config.date_features,
            config.promo_means,
        )

    @classmethod
    def named(cls, name: str) -> FeatureSpec:
        """Return the spec of a ``FEATURE_PRESETS`` entry ("required": the seed's 11 features)."""
        if name not in FEATURE_PRESETS:
            raise DataValidationError(
                f"unknown feature preset {name!r}; use {sorted(FEATURE_PRESETS)}"
            )
        return cls.from_config(FEATURE_PRESETS[name])

    def to_config(self) -> FeatureConfig:
        return _validated(self.to_dict())

    @property
    def numeric_names(self) -> list[str]:
        names = [f"lag_{lag}" for lag in self.lags]
        names += [f"roll_{w}_mean" for w in self.rolling_means]
        names += [f"dow_mean_{n}" for n in self.seasonal_means]
        names += [f"promo_mean_{w}" for w in self.promo_means]
        return names

    @property
    def feature_names(self) -> list[str]:
        return [*self.numeric_names, *self.date_features, PROMO, *CATEGORICAL]

    @property
    def feature_types(self) -> list[str]:
        return ["c" if name in CATEGORICAL else "q" for name in self.feature_names]

    @property
    def lookback(self) -> int:
        """Days of history the features of one day read (the longest lag or window)."""
        windows = [*self.lags, *self.rolling_means, *(7 * n for n in self.seasonal_means)]
        windows += [w - 1 for w in self.promo_means]
        return max(windows)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "lags": list(self.lags),
            "rolling_means": list(self.rolling_means),
            "seasonal_means": list(self.seasonal_means),
            "date_features": list(self.date_features),
        }
        data["promo_means"] = list(self.promo_means)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSpec:
        """Read :meth:`to_dict`, or the named-set form of earlier bundles (the same columns)."""
        if "rolling_means" not in data and "windows" in data:
            data = {
                "lags": data["lags"],
                "rolling_means": data["windows"],
                "seasonal_means": data.get("dow_counts", ()),
                "date_features": [*CALENDAR, *data.get("calendar_extras", ())],
            }
        # a spec saved before promo means existed has none (not today's default)
        return cls.from_config(_validated({"promo_means": [], **data}))


def _validated(data: dict[str, Any]) -> FeatureConfig:
    """Check a spec by the settings' rules (lags >= 1, known date features, ...)."""
    try:
        return FeatureConfig.model_validate(data)
    except ValidationError as exc:
        raise DataValidationError(f"invalid feature spec: {_reasons(exc)}") from None


def _reasons(exc: ValidationError) -> str:
    """One line: each error's field (``lags.0``) and message."""
    reasons = []
    for error in exc.errors():
        message = str(error["msg"]).removeprefix("Value error, ")
        field = ".".join(str(part) for part in error["loc"])
        reasons.append(f"{field}: {message}" if field else message)
    return "; ".join(reasons)


@dataclass(frozen=True)
class Panel:
    """The canonical frame as (series, day) arrays; ``keys`` holds one row per series."""

    keys: pd.DataFrame
    dates: pd.DatetimeIndex
    log_sales: FloatArray
    promo: FloatArray
    closed: npt.NDArray[np.bool_]
    sales: FloatArray  # the original scale (a view of the frame's column where possible)

    @property
    def n_series(self) -> int:
        return len(self.keys)

    def to_frame(self) -> pd.DataFrame:
        """Return the canonical frame again (series-major, the same values and dtypes)."""
        n_series, n_days = self.sales.shape
        return pd.DataFrame(
            {
                DATE: np.tile(self.dates.to_numpy(dtype="datetime64[ns]"), n_series),
                STORE: np.repeat(self.keys[STORE].to_numpy(dtype=np.int64), n_days),
                FAMILY: self.keys[FAMILY].repeat(n_days).reset_index(drop=True),
                TARGET: self.sales.reshape(-1),
                PROMO: self.promo.reshape(-1).astype(np.int64),
                IS_CLOSED: self.closed.reshape(-1),
            }
        )


def panel_from_frame(frame: pd.DataFrame) -> Panel:
    """Reshape a canonical sales frame (complete panel, any row order) into a :class:`Panel`."""
    if frame.empty:
        raise DataValidationError("the sales history is empty")
    if not is_series_sorted(frame):
        frame = frame.sort_values([STORE, FAMILY, DATE], kind="stable").reset_index(drop=True)
    dates = pd.DatetimeIndex(frame[DATE].drop_duplicates().sort_values())
    n_days = len(dates)
    n_series = len(frame) // n_days
    if n_series * n_days != len(frame):
        raise DataValidationError("the sales history is not a complete daily panel")
    date_grid = frame[DATE].to_numpy().reshape(n_series, n_days)
    if not (date_grid == dates.to_numpy()[None, :]).all():
        raise DataValidationError("the sales history has gaps or duplicate days in some series")
    if n_days > 1 and (np.diff(dates.to_numpy()) != np.timedelta64(1, "D")).any():
        raise DataValidationError("the sales history is not a daily panel without gaps")
    keys = frame.iloc[np.arange(n_series) * n_days][[STORE, FAMILY]].reset_index(drop=True)
    sales = frame[TARGET].to_numpy(dtype=np.float64).reshape(n_series, n_days)
    closed = (
        frame[IS_CLOSED].to_numpy(dtype=np.bool_).reshape(n_series, n_days)
        if IS_CLOSED in frame
        else np.zeros((n_series, n_days), dtype=np.bool_)
    )
    return Panel(
        keys=keys,
        dates=dates,
        log_sales=carry_over_closures(np.log1p(sales), closed),
        promo=frame[PROMO].to_numpy(dtype=np.float64).reshape(n_series, n_days),
        closed=closed,
        sales=sales,
    )


def promo_history(
    panel: Panel, series: npt.NDArray[np.intp], future: FloatArray, lookback: int
) -> FloatArray:
    """Onpromotion aligned with a recursion window: the last ``lookback`` days, then ``future``."""
    return np.concatenate([panel.promo[series, -lookback:], future], axis=1)


def carry_over_closures(log_sales: FloatArray, closed: npt.NDArray[np.bool_]) -> FloatArray:
    """Give each closed cell the last open day's value of its series (in place; returned).

    A closure is not a day of zero demand: lags and rolling means read the demand before it
    (Monday's lag 1 after a closed Sunday is Saturday's). A series closed from its first day
    keeps its 0 until it opens. Serving's recursion carries a future closure the same way.
    """
    if not closed.any():
        return log_sales
    n_days = log_sales.shape[1]
    last_open = np.where(closed, 0, np.arange(n_days)[None, :])
    np.maximum.accumulate(last_open, axis=1, out=last_open)
    rows = np.arange(log_sales.shape[0])[:, None]
    filled = log_sales[rows, last_open]
    log_sales[closed] = filled[closed]
    return log_sales


def silent_series(sales: FloatArray, closed: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """Flag the series of a (series, day) window open on some day and selling on none.

    A closed day is not a day without demand: a series closed on every day of the window (a
    store shut for a refurbishment before it opens again) is not judged dead. Every model and
    the blend apply this one rule.
    """
    is_open = ~closed
    sold = np.nan_to_num(sales) > 0
    return np.asarray(is_open.any(axis=1) & ~(sold & is_open).any(axis=1), dtype=np.bool_)


def is_series_sorted(frame: pd.DataFrame) -> bool:
    """Whether the rows are ordered by store, family (its sorted order), then date."""
    family = frame[FAMILY]
    is_cat = isinstance(family.dtype, pd.CategoricalDtype)
    if is_cat and family.cat.categories.is_monotonic_increasing:
        codes = family.cat.codes.to_numpy()
    else:
        codes = pd.factorize(family.astype(str), sort=True)[0]
    key = frame[STORE].to_numpy().astype(np.int64) * 10_000 + codes.astype(np.int64)
    step = np.diff(key)
    date_up = np.diff(frame[DATE].to_numpy()) > np.timedelta64(0, "D")
    return bool((step >= 0).all() and (date_up | (step != 0)).all())


class FeatureBuilder:
    """Builds the model's feature matrix for training (all days) and serving (one day)."""

    def __init__(
        self,
        spec: FeatureSpec,
        *,
        stores: Sequence[int],
        families: Sequence[str],
        holiday_dates: Sequence[str] = (),
        yearly_closures: YearlyClosures = NO_YEARLY_CLOSURES,
    ):
        self.spec = spec
        self.stores = [int(s) for s in stores]
        self.families = [str(f) for f in families]
        self.holiday_dates = [str(d) for d in holiday_dates]
        # Days the whole chain closes every year read as sales 0 in the history columns, where
        # every other closure carries the last open day (bench/RESULTS.md, closures: carrying it
        # over them too was worse on the real data)
        self.yearly_closures = yearly_closures
        self._store_positions = {store: i for i, store in enumerate(self.stores)}
        self._names = tuple(spec.feature_names)  # the matrix columns, in order
        self._day_calendars: dict[pd.Timestamp, dict[str, FloatArray]] = {}

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        spec: FeatureSpec,
        *,
        holiday_dates: Sequence[str] = (),
        yearly_closures: YearlyClosures | None = None,
    ) -> FeatureBuilder:
        """Learn the category vocabularies (sorted) and the yearly closures from a sales frame.

        ``yearly_closures``: given when ``frame`` holds no ``is_closed`` (or only a part of the
        history); by default learned from ``frame`` (closed_days.frame_yearly_closures).
        """
        stores = sorted({int(s) for s in frame[STORE].unique()})
        families = sorted({str(f) for f in frame[FAMILY].unique()})
        if yearly_closures is None:
            yearly_closures = (
                frame_yearly_closures(frame) if IS_CLOSED in frame else NO_YEARLY_CLOSURES
            )
        return cls(
            spec,
            stores=stores,
            families=families,
            holiday_dates=holiday_dates,
            yearly_closures=yearly_closures,
        )

    def history_log_sales(self, log_sales: FloatArray, dates: pd.DatetimeIndex) -> FloatArray:
        """``log_sales`` (series x ``dates``) as the history columns read them.

        A yearly closure reads 0 (a copy is made only when ``dates`` hold one).
        """
        yearly = self.yearly_closures.mask(dates.to_numpy())
        if not yearly.any():
            return log_sales
        out = log_sales.copy()
        out[:, yearly] = 0.0
        return out

    def _calendar(self, dates: pd.DatetimeIndex) -> dict[str, FloatArray]:
        names = self.spec.date_features
        cols = calendar_columns(dates)
        cols.update(
            extra_calendar_columns(dates, holiday_dates=self.holiday_dates, names=list(names))
        )
        return {name: cols[name] for name in names}

    def _day_calendar(self, date: pd.Timestamp) -> dict[str, FloatArray]:
        """Return the calendar columns of one date, memoised (serving repeats the same days)."""
        cached = self._day_calendars.get(date)
        if cached is None:
            if len(self._day_calendars) >= DAY_CALENDAR_CACHE:
                self._day_calendars.clear()
            cached = self._calendar(pd.DatetimeIndex([date]))
            self._day_calendars[date] = cached
        return cached

    @property
    def feature_names(self) -> list[str]:
        return self.spec.feature_names

    def encode(self, keys: pd.DataFrame) -> tuple[FloatArray, FloatArray]:
        """Map (store_nbr, family) rows to the saved category codes; unknown ones raise."""
        position = self._store_positions
        stores = keys[STORE].to_numpy(np.int64).tolist()
        store_codes = np.array([position.get(s, -1) for s in stores], dtype=np.int64)
        family_codes = family_positions(keys, self.families)
        bad = (store_codes < 0) | (family_codes < 0)
        if bad.any():
            first = keys[bad].iloc[0]
            raise UnknownSeriesError(
                f"store_nbr={first[STORE]}, family={first[FAMILY]!r} was not seen in training"
            )
        return store_codes.astype(np.float64), family_codes.astype(np.float64)

    def panel_features(self, panel: Panel, *, first_day: int = 0) -> npt.NDArray[np.float32]:
        """Features of every (series, day >= first_day), rows series-major like the panel."""
        n_days = panel.log_sales.shape[1] - first_day
        cols = {name: values[:, first_day:] for name, values in self._history(panel).items()}
        if self.spec.promo_means:
            for window, values in trailing_means(panel.promo, self.spec.promo_means).items():
                cols[f"promo_mean_{window}"] = values[:, first_day:]
        for name, values in self._calendar(panel.dates[first_day:]).items():
            cols[name] = values[None, :]
        cols[PROMO] = panel.promo[:, first_day:]
        store_codes, family_codes = self.encode(panel.keys)
        cols[STORE] = store_codes[:, None]
        cols[FAMILY] = family_codes[:, None]
        return self._stack(cols, (panel.n_series, n_days))

    def _history(self, panel: Panel) -> dict[str, FloatArray]:
        """Compute the sales-history columns for every day of the panel."""
        spec, y = self.spec, self.history_log_sales(panel.log_sales, panel.dates)
        cols: dict[str, FloatArray] = {}
        for lag in spec.lags:
            cols[f"lag_{lag}"] = shift_days(y, lag)
        if spec.rolling_means:
            for window, values in rolling_means(y, spec.rolling_means).items():
                cols[f"roll_{window}_mean"] = values
        for count in spec.seasonal_means:
            cols[f"dow_mean_{count}"] = seasonal_mean(y, 7, count)
        return cols

    def day_features(
        self,
        window: FloatArray,
        *,
        day: int,
        date: pd.Timestamp,
        promo: FloatArray,
        codes: tuple[FloatArray, FloatArray],
        promo_window: FloatArray | None = None,
    ) -> npt.NDArray[np.float32]:
        """Features of column ``day`` of a (series, day) log-sales window (one recursion step).

        Only columns ``< day`` of ``window`` are read; ``promo`` is that day's onpromotion.
        ``promo_window`` is the onpromotion aligned with ``window`` (history, then the known
        future), needed when the spec declares ``promo_means``; columns ``<= day`` are read.
        """
        cols = self._history_at(recent_days(window, day, self.spec.lookback))
        if self.spec.promo_means:
            if promo_window is None:
                raise ValueError("the spec declares promo_means: pass promo_window")
            recent = recent_days(promo_window, day + 1, max(self.spec.promo_means))
            for size, values in trailing_means_at(recent, self.spec.promo_means).items():
                cols[f"promo_mean_{size}"] = values
        for name, values in self._day_calendar(date).items():
            cols[name] = values
        cols[PROMO] = promo
        cols[STORE], cols[FAMILY] = codes
        return self._stack(cols, (window.shape[0],))

    def _history_at(self, recent: FloatArray) -> dict[str, FloatArray]:
        """:meth:`_history`'s sales columns for one day (``recent``: column k = lag k + 1)."""
        spec = self.spec
        cols: dict[str, FloatArray] = {}
        for lag in spec.lags:
            cols[f"lag_{lag}"] = recent[:, lag - 1]
        if spec.rolling_means:
            for size, values in rolling_means_at(recent, spec.rolling_means).items():
                cols[f"roll_{size}_mean"] = values
        if spec.seasonal_means:
            for count, values in seasonal_means_at(recent, 7, spec.seasonal_means).items():
                cols[f"dow_mean_{count}"] = values
        return cols

    def _stack(
        self, cols: dict[str, FloatArray], shape: tuple[int, ...]
    ) -> npt.NDArray[np.float32]:
        """Write each column (broadcastable to ``shape``) into one float32 row-major matrix."""
        out = np.empty((*shape, len(self._names)), dtype=np.float32)
        for j, name in enumerate(self._names):
            out[..., j] = cols[name]
        return out.reshape(-1, len(self._names))

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec.to_dict(),
            "feature_names": self.feature_names,
            "feature_types": self.spec.feature_types,
            "categories": {STORE: self.stores, FAMILY: self.families},
            "holiday_dates": self.holiday_dates,
            "yearly_closures": self.yearly_closures.to_json(),
            "target_transform": "log1p",
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureBuilder:
        spec = FeatureSpec.from_dict(data["spec"])
        builder = cls(
            spec,
            stores=data["categories"][STORE],
            families=data["categories"][FAMILY],
            holiday_dates=data.get("holiday_dates", ()),
            # builders saved before the closures were learned read 25 December as 0 (a code
            # rule then): bundle_contents.LEGACY_YEARLY_CLOSURES
            yearly_closures=YearlyClosures.from_json(
                data.get("yearly_closures", LEGACY_YEARLY_CLOSURES), source="preprocessor"
            ),
        )
        if builder.feature_names != list(data["feature_names"]):
            raise DataValidationError("preprocessor feature list does not match its spec")
        return builder
