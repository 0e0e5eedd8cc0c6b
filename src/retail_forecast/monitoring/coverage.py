"""Rolling coverage of the served central intervals and the calibration alert.

A central interval is a served pair of levels (a, 1 - a), nominal 1 - 2a: 0.1/0.9 is the 80 %
interval. Over the monitoring window of one model version (the window the accuracy status uses:
the last ``window_days`` scored target days), its coverage is the share of logged rows whose
actual lies in [q_a, q_(1-a)] (both ends included, as ``training.metrics.interval_coverage``),
counting the rows served with both levels. Statuses:

- ``miscalibrated`` (alert): some interval's coverage leaves nominal +/- ``tolerance`` (5
  points) with at least ``min_rows`` rows behind it; logged at WARNING;
- ``ok``: every interval with enough rows is within the tolerance;
- ``insufficient_data``: no interval has ``min_rows`` rows yet (or none is scored yet);
- ``no_quantiles``: the version served no quantiles; ``no_intervals``: the levels it served
  pair into no central interval (e.g. only 0.5);
- ``unavailable``: the store could not be read (no alert).

``MIN_COVERAGE_ROWS`` = 1000: a coverage is a binomial share; at the 50 % interval (the widest
spread, p(1 - p) = 0.25) the standard error over 1000 independent rows is 1.6 points, so a
calibrated model crosses +/- 5 points only beyond 3 standard errors (about 0.2 % of checks),
while rows of one day share its shocks (a holiday moves every series), which the margin absorbs.
The 100 rows of the accuracy alert would give a 5-point standard error: an alert by chance.
"""

from __future__ import annotations

import logging
import math
import sqlite3
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Final

import numpy as np
import pandas as pd

from retail_forecast.schema import DATE, FAMILY, STORE
from retail_forecast.storage.prediction_log_db import (
    ACTUAL,
    HORIZON_DAY,
    PREDICTION,
    PredictionLogDB,
)
from retail_forecast.storage.prediction_quantiles import LEVEL, VALUE

logger = logging.getLogger(__name__)

TOLERANCE: Final = 0.05  # the issue's +/- 5 points around the nominal coverage
MIN_COVERAGE_ROWS: Final = 1000  # rows behind a coverage before it may alert (docstring)
OK, MISCALIBRATED, INSUFFICIENT = "ok", "miscalibrated", "insufficient_data"
NO_QUANTILES, NO_INTERVALS, UNAVAILABLE = "no_quantiles", "no_intervals", "unavailable"
ROW_KEY: Final = (STORE, FAMILY, DATE, HORIZON_DAY)


@dataclass(frozen=True)
class IntervalCoverage:
    """Coverage of one central interval over the window; ``below``/``above``: misses per side."""

    lower_level: float
    upper_level: float
    nominal: float
    coverage: float | None
    below: float | None
    above: float | None
    n: int
    status: str
    alert: bool


@dataclass(frozen=True)
class CoverageStatus:
    """Coverage of every served central interval of one model version over the window."""

    status: str
    alert: bool
    model_version: str | None
    window_days: int
    tolerance: float = TOLERANCE
    min_rows: int = MIN_COVERAGE_ROWS
    intervals: tuple[IntervalCoverage, ...] = ()
    window: tuple[str, str] | None = None
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["window"] = list(self.window) if self.window else None
        out["intervals"] = [asdict(interval) for interval in self.intervals]
        return out


def central_pairs(levels: Sequence[float]) -> list[tuple[float, float]]:
    """Pair served levels into central intervals (a, 1 - a), a < 0.5, narrowest first."""
    ordered = sorted(set(levels))
    pairs = [
        (a, b)
        for a in ordered
        if a < 0.5
        for b in ordered
        if b > 0.5 and math.isclose(a + b, 1.0, abs_tol=1e-9)
    ]
    return sorted(pairs, reverse=True)


def level_columns(frame: pd.DataFrame) -> list[float]:
    """List the level columns of a ``wide_quantiles`` frame (float labels), ascending."""
    labels: list[Any] = frame.columns.tolist()
    return sorted(float(c) for c in labels if isinstance(c, float))


def wide_quantiles(joined: pd.DataFrame) -> pd.DataFrame:
    """One row per logged forecast: key, actual, prediction and one column per served level."""
    keys = list(ROW_KEY)
    wide = joined.pivot_table(index=keys, columns=LEVEL, values=VALUE, aggfunc="last")
    first = joined.groupby(keys, sort=True)[[ACTUAL, PREDICTION]].first()
    wide.columns = [float(c) for c in wide.columns]
    return first.join(wide).reset_index()


def interval_coverages(
    wide: pd.DataFrame, *, tolerance: float, min_rows: int
) -> list[IntervalCoverage]:
    """Coverage per central interval of the served levels (rows holding both bounds)."""
    out = []
    for lo_level, hi_level in central_pairs(level_columns(wide)):
        both = wide[[lo_level, hi_level, ACTUAL]].dropna()
        nominal = round(hi_level - lo_level, 9)
        n = len(both)
        if n == 0:
            out.append(
                IntervalCoverage(
                    lo_level, hi_level, nominal, None, None, None, 0, INSUFFICIENT, False
                )
            )
            continue
        actual = both[ACTUAL].to_numpy(np.float64)
        below = float(np.mean(actual < both[lo_level].to_numpy(np.float64)))
        above = float(np.mean(actual > both[hi_level].to_numpy(np.float64)))
        coverage = 1.0 - below - above
        off = round(abs(coverage - nominal), 9) > tolerance  # round: 0.75 vs 0.8 is not "out"
        status = INSUFFICIENT if n < min_rows else (MISCALIBRATED if off else OK)
        alert = status == MISCALIBRATED
        out.append(
            IntervalCoverage(lo_level, hi_level, nominal, coverage, below, above, n, status, alert)
        )
    return out


def _describe(interval: IntervalCoverage) -> str:
    shown = "n/a" if interval.coverage is None else f"{interval.coverage:.1%}"
    return (
        f"{interval.nominal:.0%} interval ({interval.lower_level:g}-{interval.upper_level:g}) "
        f"covers {shown} of {interval.n} rows"
    )


def evaluate_coverage(
    joined: pd.DataFrame,
    *,
    served: bool,
    model_version: str | None,
    window_days: int,
    tolerance: float = TOLERANCE,
    min_rows: int = MIN_COVERAGE_ROWS,
) -> CoverageStatus:
    """Rate the joined quantile rows of one version (already limited to the window)."""
    status = CoverageStatus(NO_QUANTILES, False, model_version, window_days, tolerance, min_rows)
    if not served:
        return replace(status, message=f"no quantiles served by version {model_version}")
    if joined.empty:
        message = "quantiles served, none scored by an actual in the window yet"
        return replace(status, status=INSUFFICIENT, message=message)
    dates = pd.to_datetime(joined[DATE])
    status = replace(status, window=(str(dates.min().date()), str(dates.max().date())))
    intervals = tuple(
        interval_coverages(wide_quantiles(joined), tolerance=tolerance, min_rows=min_rows)
    )
    if not intervals:
        levels = ", ".join(f"{level:g}" for level in sorted(joined[LEVEL].unique()))
        message = f"the served levels ({levels}) pair into no central interval (a, 1 - a)"
        return replace(status, status=NO_INTERVALS, message=message)
    status = replace(status, intervals=intervals)
    described = "; ".join(_describe(i) for i in intervals)
    alerts = [i for i in intervals if i.alert]
    if alerts:
        message = f"coverage outside nominal +/- {tolerance:.0%}: " + described
        logger.warning("served quantiles miscalibrated version=%s %s", model_version, message)
        return replace(status, status=MISCALIBRATED, alert=True, message=message)
    if any(i.status == OK for i in intervals):
        return replace(status, status=OK, message=described)
    return replace(status, status=INSUFFICIENT, message=f"{described} ({min_rows} needed)")


def coverage_status(
    log: PredictionLogDB,
    *,
    model_version: str,
    window_days: int,
    tolerance: float = TOLERANCE,
    min_rows: int = MIN_COVERAGE_ROWS,
) -> CoverageStatus:
    """Coverage of ``model_version`` over the window; ``unavailable`` when the store fails."""
    try:
        joined, served = log.joined_quantiles(model_version=model_version, window_days=window_days)
    except (sqlite3.Error, OSError):
        logger.exception("monitoring store unreadable db=%s", log.db_path)
        message = "the monitoring store is unreadable; see the service log"
        return CoverageStatus(
            UNAVAILABLE, False, model_version, window_days, tolerance, min_rows, message=message
        )
    return evaluate_coverage(
        joined,
        served=served,
        model_version=model_version,
        window_days=window_days,
        tolerance=tolerance,
        min_rows=min_rows,
    )
