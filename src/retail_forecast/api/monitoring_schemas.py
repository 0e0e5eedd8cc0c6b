"""Response models of GET /api/v1/monitoring/status and /drift (statuses, never exceptions)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field

StatusLiteral = Literal["ok", "degraded", "insufficient_data", "no_baseline", "unavailable"]
DriftLiteral = Literal["ok", "drift", "insufficient_data", "unavailable"]
TestStatusLiteral = Literal[
    "ok", "drift", "new_category", "insufficient_data", "missing", "all_nan"
]


class DateWindow(BaseModel):
    first: dt.date
    last: dt.date


class AccuracyRow(BaseModel):
    """Accuracy of the scored forecasts of one horizon day in the status window."""

    horizon_day: int = Field(ge=1)
    rmsle: float | None
    mae: float | None
    bias: float | None = Field(description="(sum predicted - sum actual) / sum actual")
    n: int = Field(ge=0)


class PredictionLogStats(BaseModel):
    """Rows of this worker's monitoring writer since start (promise 26: drops, not failures)."""

    queued_rows: int = Field(ge=0)
    written_rows: int = Field(ge=0)
    dropped_rows: int = Field(ge=0)
    failed_rows: int = Field(ge=0)


class IntervalCoverageItem(BaseModel):
    """Coverage of one served central interval (levels a, 1 - a) over the status window."""

    lower_level: float
    upper_level: float
    nominal: float = Field(description="upper_level - lower_level, e.g. 0.8 for 0.1/0.9.")
    coverage: float | None = Field(description="Share of actuals in [lower, upper].")
    below: float | None = Field(description="Share of actuals below the lower bound.")
    above: float | None = Field(description="Share of actuals above the upper bound.")
    n: int = Field(ge=0, description="Scored rows served with both levels.")
    status: Literal["ok", "miscalibrated", "insufficient_data"]
    alert: bool


class QuantileCoverage(BaseModel):
    """Coverage of the served quantiles: alert when an interval leaves nominal +/- tolerance."""

    status: Literal[
        "ok", "miscalibrated", "insufficient_data", "no_quantiles", "no_intervals", "unavailable"
    ]
    alert: bool
    tolerance: float
    min_rows: int = Field(description="Rows an interval needs before it may alert.")
    window: DateWindow | None
    message: str
    intervals: list[IntervalCoverageItem]


class MonitoringStatusResponse(BaseModel):
    """Accuracy of the serving version over the recent window vs the bundle's backtest."""

    status: StatusLiteral
    alert: bool
    model_version: str
    model: str | None = Field(description="The model that produced most scored forecasts.")
    threshold_ratio: float = Field(description="Alert when ratio exceeds this.")
    window_days: int
    n: int = Field(ge=0, description="Scored predictions in the window.")
    rmsle: float | None
    baseline_rmsle: float | None = Field(description="Backtest RMSLE for the same horizon mix.")
    ratio: float | None
    window: DateWindow | None
    message: str
    by_horizon_day: list[AccuracyRow]
    coverage: QuantileCoverage
    prediction_log: PredictionLogStats


class FeatureDriftItem(BaseModel):
    feature: str
    kind: Literal["numeric", "categorical"]
    test: str
    statistic: float | None
    threshold: float
    drifted: bool
    status: TestStatusLiteral
    n_current: int = Field(ge=0)
    nan_share: float | None
    stats: dict[str, float | None]
    new_categories: list[str]


class DriftCheckItem(BaseModel):
    name: str
    statistic: float | None
    threshold: float
    drifted: bool
    status: TestStatusLiteral
    reference: float | None
    current: float | None
    details: dict[str, Any]


class DriftResponse(BaseModel):
    """The recent history window vs the bundle's reference profile."""

    status: DriftLiteral
    model_version: str
    message: str
    history_end: dt.date
    window: DateWindow | None
    reference_window: DateWindow | None
    current_rows: int = Field(ge=0)
    reference_rows: int = Field(ge=0)
    drifted_features: list[str]
    drifted_checks: list[str]
    share_drifted: float = Field(ge=0, le=1)
    features: list[FeatureDriftItem]
    checks: list[DriftCheckItem]
