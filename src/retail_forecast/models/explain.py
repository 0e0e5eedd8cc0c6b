"""Why a served forecast: the tree model's exact TreeSHAP contributions, in log space.

The rows explained are the very feature rows the served recursion predicts: the recursion of
:meth:`XGBForecaster.forecast_log` runs once, its log1p forecasts fill the (series, day) window
as they did while it ran, and each requested day's features are rebuilt from that window.
:meth:`FeatureBuilder.day_features` reads only the columns before the day, so the rebuilt rows
equal the ones the recursion fed its trees. XGBoost's own ``pred_contribs=True`` (exact
TreeSHAP, no extra dependency) then splits each row's margin into one value per feature plus
the bias: ``bias + sum(contributions) = tree_log1p``, the tree model's log1p prediction of
that day (equal up to float32 rounding, ~1e-6). The same values come from a compiled kernel
where it was built (models/tree_shap.py: several times faster for a few rows).

Only the XGBoost part is explained: the hybrid blends ``w * log1p(xgb) + (1 - w) *
log1p(lstm)`` per family (models/hybrid.py), so each row carries ``w`` and says the LSTM part
is not explained. Rows no model answers (the dead-series rule, closures) get no contributions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd
import xgboost as xgb

from retail_forecast.errors import UnknownSeriesError
from retail_forecast.features.builder import FeatureBuilder, Panel, promo_history
from retail_forecast.features.calendar import days_after
from retail_forecast.features.keys import series_keys
from retail_forecast.models.hybrid import HybridForecaster
from retail_forecast.models.xgboost import XGBForecaster
from retail_forecast.schema import DATE, FAMILY, IS_CLOSED, PROMO

TOP_FEATURES: Final = 8
"""Contributions listed per row (largest |value| first); the others are summed in ``other``."""
LSTM_NOTE: Final = (
    "the LSTM part is not explained: only the tree model (XGBoost) has exact contributions"
)
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Contribution:
    feature: str
    value: float  # the feature's value in the row (log1p sales for lags and means)
    contribution: float  # its TreeSHAP value, in log1p space


@dataclass(frozen=True)
class RowExplanation:
    """One row: ``bias + sum(c.contribution for c in contributions) + other == tree_log1p``."""

    tree_log1p: float
    bias: float
    contributions: tuple[Contribution, ...]
    other: float
    xgboost_weight: float

    @property
    def note(self) -> str:
        if self.xgboost_weight >= 1.0:
            return "the forecast is the tree model's alone (XGBoost weight 1)"
        if self.xgboost_weight <= 0.0:
            return "the forecast is the LSTM's alone (XGBoost weight 0); " + LSTM_NOTE
        return LSTM_NOTE


def explain_rows(
    model: HybridForecaster, panel: Panel, future: pd.DataFrame, *, top: int = TOP_FEATURES
) -> list[RowExplanation]:
    """Explain every row of ``future`` (canonical rows, as served) from ``panel``'s history.

    ``future`` follows the served contract (models/xgboost.py ``panel_sales``): each series'
    rows cover the window from its first day, an ``is_closed`` column marks the data set's
    closures. The caller drops the rows no model answers (closed, dead series) from the output.
    """
    forecaster = model.xgboost
    x, tree_log = feature_rows(forecaster, panel, future)
    shap = contributions(forecaster, x)
    weight = model.weights.weights_for(future[FAMILY])
    names = forecaster.builder_.feature_names
    return [
        _row(names, x[i], shap[i], float(tree_log[i]), float(weight[i]), top)
        for i in range(len(future))
    ]


def contributions(forecaster: XGBForecaster, x: npt.NDArray[np.float32]) -> FloatArray:
    """Exact TreeSHAP of all rows: per feature, then the bias (n, features + 1).

    The compiled kernel (models/tree_shap.py) where it was built, XGBoost's own
    ``pred_contribs`` otherwise: the same values up to float32 rounding, the kernel several
    times faster for one series' rows (bench/RESULTS.md, dashboard).
    """
    shap = forecaster.tree_shap()
    if shap is not None:
        return shap.contributions(x, threads=forecaster.serving_threads_)
    return xgboost_contributions(forecaster.booster_, x, forecaster.builder_)


def xgboost_contributions(
    booster: xgb.Booster, x: npt.NDArray[np.float32], builder: FeatureBuilder
) -> FloatArray:
    """``pred_contribs`` of all rows in ONE call: per feature, then the bias (n, features + 1).

    The matrix is built with one thread: with XGBoost's default (every core) its OpenMP team
    spins after building a few rows, and on two shared cores that wait cost ~15-20 ms per
    request, more than the TreeSHAP of a 16-day series itself (bench/dashboard.py). The trees
    are walked with the booster's own threads (:meth:`XGBForecaster.prepare_serving`).
    """
    matrix = xgb.DMatrix(
        x,
        feature_names=builder.feature_names,
        feature_types=builder.spec.feature_types,
        enable_categorical=True,
        nthread=1,
    )
    return np.asarray(booster.predict(matrix, pred_contribs=True), np.float64)


def feature_rows(
    forecaster: XGBForecaster, panel: Panel, future: pd.DataFrame
) -> tuple[npt.NDArray[np.float32], FloatArray]:
    """Each row's features as the served recursion built them, and its log1p prediction."""
    builder = forecaster.builder_
    lookback = builder.spec.lookback
    origin = pd.Timestamp(panel.dates[-1])
    steps = days_after(future[DATE].to_numpy(), origin)
    series, row_series = _series_of_rows(panel, future, builder.families)
    horizon = int(steps.max())
    promo = np.zeros((len(series), horizon))
    promo[row_series, steps - 1] = future[PROMO].to_numpy(dtype=np.float64)
    shut = None
    if IS_CLOSED in future.columns:
        shut = np.zeros(promo.shape, dtype=np.bool_)
        shut[row_series, steps - 1] = future[IS_CLOSED].to_numpy(dtype=np.bool_)
    keys = panel.keys.iloc[series].reset_index(drop=True)
    forecast = forecaster.forecast_log(panel, series, keys=keys, promo=promo, closed=shut)
    history = builder.history_log_sales(
        panel.log_sales[series, -lookback:], panel.dates[-lookback:]
    )
    window = np.concatenate([history, forecast], axis=1)
    codes = builder.encode(keys)
    promo_window = promo_history(panel, series, promo, lookback)
    x = np.empty((len(future), len(builder.feature_names)), dtype=np.float32)
    for h in np.unique(steps).tolist():
        at = np.flatnonzero(steps == h)
        date = origin + pd.Timedelta(days=h)
        day_x = builder.day_features(
            window,
            day=lookback + h - 1,
            date=date,
            promo=promo[:, h - 1],
            codes=codes,
            promo_window=promo_window,
        )
        x[at] = day_x[row_series[at]]
    return x, forecast[row_series, steps - 1]


def _series_of_rows(
    panel: Panel, future: pd.DataFrame, families: list[str]
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Panel rows of the distinct requested series, and each future row's position among them."""
    wanted, row_series = np.unique(series_keys(future, families), return_inverse=True)
    known = series_keys(panel.keys, families)
    order = np.argsort(known, kind="stable")
    at = np.minimum(np.searchsorted(known[order], wanted), len(order) - 1)
    if not ((known[order][at] == wanted) & (wanted >= 0)).all():
        raise UnknownSeriesError("a requested series has no history to explain from")
    return np.asarray(order[at], dtype=np.intp), np.asarray(row_series, dtype=np.intp)


def _row(
    names: list[str],
    x: npt.NDArray[np.float32],
    shap: FloatArray,
    tree_log: float,
    weight: float,
    top: int,
) -> RowExplanation:
    values, bias = shap[:-1], float(shap[-1])  # pred_contribs: one per feature, then the bias
    order = np.argsort(-np.abs(values), kind="stable")
    shown = order[:top]
    return RowExplanation(
        tree_log1p=tree_log,
        bias=bias,
        contributions=tuple(
            Contribution(names[j], float(x[j]), float(values[j])) for j in shown.tolist()
        ),
        other=float(values[order[top:]].sum()),
        xgboost_weight=weight,
    )
