"""PredictionLog: the prediction log's store with accuracy over time and the degradation alert.

The SQLite store (served forecasts, actuals and their conflict policy) is
:class:`retail_forecast.storage.prediction_log_db.PredictionLogDB`; this class adds what
monitoring computes from it: accuracy per family, horizon day or date, the status of a model
version against its backtest, the worst series, and the coverage of the served quantiles.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from retail_forecast.monitoring.accuracy import (
    UNAVAILABLE,
    MonitoringStatus,
    accuracy_table,
    evaluate_status,
)
from retail_forecast.monitoring.coverage import (
    MIN_COVERAGE_ROWS,
    NO_QUANTILES,
    TOLERANCE,
    CoverageStatus,
    coverage_status,
    level_columns,
    wide_quantiles,
)
from retail_forecast.schema import DATE, FAMILY, STORE
from retail_forecast.storage.prediction_log_db import ACTUAL, HORIZON_DAY, PredictionLogDB

logger = logging.getLogger(__name__)

__all__ = ["PredictionLog"]


class PredictionLog(PredictionLogDB):
    """The SQLite log of served predictions and actuals, and accuracy computed from it."""

    def accuracy(
        self,
        by: str | Sequence[str] | None = FAMILY,
        *,
        window_days: int | None = None,
        model_version: str | None = None,
    ) -> pd.DataFrame:
        """RMSLE, MAE, bias and row count per ``by`` (family, horizon_day, date, ... or None)."""
        return accuracy_table(
            self.joined(window_days=window_days, model_version=model_version), by=by
        )

    def status(
        self,
        backtest_metrics: Mapping[str, Any],
        *,
        model_version: str | None = None,
        ratio: float = 1.2,
        window_days: int = 7,
        min_rows: int = 100,
    ) -> MonitoringStatus:
        """Compare the last ``window_days`` of a version (default: the latest) with the backtest.

        Never raises on a store failure: the status is then ``unavailable`` (no alert).
        """
        try:
            version = model_version or self.latest_version()
            joined = self.joined(window_days=window_days, model_version=version)
        except (sqlite3.Error, OSError) as exc:
            logger.exception("monitoring store unreadable db=%s", self.db_path)
            return MonitoringStatus(
                UNAVAILABLE, False, model_version, ratio, window_days, message=str(exc)
            )
        return evaluate_status(
            joined,
            backtest_metrics,
            model_version=version,
            ratio=ratio,
            window_days=window_days,
            min_rows=min_rows,
        )

    def worst_series(
        self, *, n: int = 1, window_days: int | None = None, model_version: str | None = None
    ) -> pd.DataFrame:
        """Return the joined rows of the ``n`` worst series (freshest forecast per day)."""
        joined = self.joined(window_days=window_days, model_version=model_version)
        if joined.empty:
            return joined
        per_series = accuracy_table(joined, by=[STORE, FAMILY])
        worst = per_series.nlargest(n, "rmsle")[[STORE, FAMILY]]
        rows = joined.merge(worst, on=[STORE, FAMILY])
        rows = rows.sort_values([STORE, FAMILY, DATE, HORIZON_DAY])
        return rows.drop_duplicates([STORE, FAMILY, DATE]).reset_index(drop=True)

    def coverage(
        self,
        *,
        model_version: str | None = None,
        window_days: int = 7,
        tolerance: float = TOLERANCE,
        min_rows: int = MIN_COVERAGE_ROWS,
    ) -> CoverageStatus:
        """Coverage of the served central intervals of a version (default: the latest).

        Never raises on a store failure: the status is then ``unavailable`` (no alert).
        """
        try:
            version = model_version or self.latest_version()
        except (sqlite3.Error, OSError) as exc:
            logger.exception("monitoring store unreadable db=%s", self.db_path)
            return CoverageStatus(UNAVAILABLE, False, model_version, window_days, message=str(exc))
        if version is None:
            return CoverageStatus(NO_QUANTILES, False, None, window_days, message="empty log")
        return coverage_status(
            self,
            model_version=version,
            window_days=window_days,
            tolerance=tolerance,
            min_rows=min_rows,
        )

    def bands(
        self, *, model_version: str | None = None, n: int = 3, window_days: int | None = None
    ) -> pd.DataFrame:
        """Return the quantile rows of the ``n`` series that most often left their widest band.

        Freshest forecast per day, one column per served level (``wide_quantiles``).
        """
        version = model_version or self.latest_version()
        if version is None:
            return pd.DataFrame()
        joined, _ = self.joined_quantiles(model_version=version, window_days=window_days)
        if joined.empty:
            return joined
        wide = wide_quantiles(joined)
        levels = level_columns(wide)
        lo, hi = levels[0], levels[-1]
        misses = (wide[ACTUAL] < wide[lo]) | (wide[ACTUAL] > wide[hi])
        per_series = wide.assign(miss=misses).groupby([STORE, FAMILY])["miss"].mean()
        worst = per_series.sort_values(ascending=False, kind="stable").index[:n]
        rows = wide.set_index([STORE, FAMILY]).loc[list(worst)].reset_index()
        rows = rows.sort_values([STORE, FAMILY, DATE, HORIZON_DAY])
        return rows.drop_duplicates([STORE, FAMILY, DATE]).reset_index(drop=True)
