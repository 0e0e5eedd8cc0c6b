"""Predictor protocol: what the API serves from (local bundle now, SageMaker later)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol, runtime_checkable

import pandas as pd

from retail_forecast.closed_days import NO_YEARLY_CLOSURES, YearlyClosures
from retail_forecast.models.quantiles import QuantileCalibration

if TYPE_CHECKING:
    from retail_forecast.config import Settings

ModelName = Literal["hybrid", "xgboost", "lstm", "zero_rule", "closed"]
MODEL_NAMES: Final[tuple[str, ...]] = ("hybrid", "xgboost", "lstm", "zero_rule", "closed")
"""Values of the ``model`` column a predictor may return ("closed" is set by the API)."""


@dataclass(frozen=True)
class ServingDomain:
    """What a request may ask for, derived from the bundle manifest and the history store.

    ``stores`` and ``families`` are sorted; the forecast window is
    ``history_end + 1 .. history_end + horizon``; ``closures``: the calendar days the bundle's
    history shows closed every year (answered 0, ``closed: true``).
    """

    stores: tuple[int, ...]
    families: tuple[str, ...]
    history_end: dt.date
    horizon: int
    onpromotion_cap: int
    closures: YearlyClosures = NO_YEARLY_CLOSURES

    @property
    def first_date(self) -> dt.date:
        return self.history_end + dt.timedelta(days=1)

    @property
    def last_date(self) -> dt.date:
        return self.history_end + dt.timedelta(days=self.horizon)

    def window(self) -> list[dt.date]:
        """Every date of the forecast window, closed days included."""
        return [self.first_date + dt.timedelta(days=k) for k in range(self.horizon)]

    def is_contiguous_stores(self) -> bool:
        return bool(self.stores) and len(self.stores) == self.stores[-1] - self.stores[0] + 1


@runtime_checkable
class Predictor(Protocol):
    """A loaded, verified model bundle plus the sales history it forecasts from.

    Implementations must be safe to call from several threads at once.
    """

    @property
    def model_version(self) -> str:
        """The serving bundle's version string."""
        ...

    @property
    def domain(self) -> ServingDomain:
        """The current serving domain; ``history_end`` moves when actuals are appended."""
        ...

    def predict(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Forecast ``rows`` (columns date, store_nbr, family, onpromotion; optional is_closed).

        ``is_closed`` (present when a request row says ``open`` 0 or falls on one of the
        domain's yearly closures) marks the closed days: the API answers those rows 0 itself;
        the models read them as closures in the recursion. The API guarantees: every row is
        inside the domain, no (date, store_nbr, family) repeats, and for every
        series the rows hold every other day from ``history_end + 1`` to that series' last
        requested date.
        Returns ``rows`` in the same order with a float ``sales`` column (original scale,
        finite, >= 0) and a ``model`` column (one of MODEL_NAMES except "closed").
        """
        ...

    def append_actuals(self, rows: pd.DataFrame) -> int:
        """Append observed sales (date, store_nbr, family, onpromotion, sales); idempotent.

        Optional columns: ``confirm_spike`` and ``correction`` (booleans) and ``request_id``
        (storage.plausibility, storage.conflict_policy). Returns how many rows changed the
        history (new rows and corrected values). Raises ConflictError when a row contradicts a
        value already stored without ``correction``, DataValidationError when the rows cannot
        extend the history (storage.RefusedRowsError, one of them, names each refused row).
        """
        ...

    def describe(self) -> dict[str, Any]:
        """JSON-ready facts about the bundle: version, train window, metrics."""
        ...


@runtime_checkable
class MonitoringSource(Protocol):
    """Optional extra of a Predictor: what the monitoring endpoints read (promise 26).

    A predictor without these methods still serves; /api/v1/monitoring answers
    ``unavailable`` for it. Each method may be called from several threads at once.
    """

    def history_frame(self) -> pd.DataFrame:
        """Return the complete days of the served history as a canonical sales frame."""
        ...

    def reference_profile(self) -> pd.DataFrame | None:
        """Return the bundle's reference.parquet profile, or None when the bundle has none."""
        ...

    def backtest_metrics(self) -> Mapping[str, Any] | None:
        """Return the bundle's metrics.json (``BacktestResult.to_dict()``), or None."""
        ...


@runtime_checkable
class QuantileSource(Protocol):
    """Optional extra of a Predictor: the quantile calibration of the bundle it serves.

    The API computes a request's quantiles from the point forecasts the predictor answered
    (one vectorised call, :mod:`retail_forecast.api.predict_service`), so any backend that
    names its calibration serves them; the SageMaker backend names the one of the bundle it
    was deployed from, verified locally like the rest of that bundle.
    """

    @property
    def calibration(self) -> QuantileCalibration | None:
        """The bundle's calibration, or None: the predictor serves point forecasts only."""
        ...


def served_calibration(predictor: object) -> QuantileCalibration | None:
    """Return ``predictor.calibration`` when it has one (None for a predictor without it)."""
    calibration = getattr(predictor, "calibration", None)
    return calibration if isinstance(calibration, QuantileCalibration) else None


PredictorLoader = Callable[["Settings"], Predictor]
"""Builds a verified predictor from settings; may block for a while (runs off the loop)."""
