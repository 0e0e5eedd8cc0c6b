"""Honest quantile scores on backtest folds: fold k's quantiles calibrated on the other folds.

:func:`heldout_quantiles` calibrates a :class:`QuantileCalibration` per fold on the other
folds' calibratable rows (open, point > 0) of one model column, as
:mod:`~retail_forecast.training.heldout_blend` does for the blend weights; with a single fold
there is nothing to hold out and the in-sample calibration is used (logged).
:func:`quantile_report` scores them on the open rows: pinball loss per level, the weighted
quantile loss over the nine M5 levels and the coverage of the 50/80/95 % central intervals,
overall, per fold, per horizon day and per family.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from rich.table import Table

from retail_forecast.models.blend import BlendWeights
from retail_forecast.models.quantiles import QuantileCalibration
from retail_forecast.schema import FAMILY
from retail_forecast.training.backtest import ACTUAL, FOLD, HORIZON_DAY, OPEN, BacktestResult
from retail_forecast.training.metrics import (
    CENTRAL_INTERVALS,
    M5_LEVELS,
    interval_coverage,
    pinball_loss,
    weighted_quantile_loss,
)

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

REPORT_LEVELS: tuple[float, ...] = tuple(
    sorted(
        {
            *M5_LEVELS,
            *(round((1 - c) / 2, 4) for c in CENTRAL_INTERVALS),
            *(round((1 + c) / 2, 4) for c in CENTRAL_INTERVALS),
        }
    )
)
"""The levels the report needs: M5's nine and both ends of every central interval."""


def served_column(weights: BlendWeights, *, blend_name: str = "hybrid") -> str:
    """Return the backtest column a bundle with these weights serves: one model or the blend."""
    if not weights.per_family and weights.global_weight in (0.0, 1.0):
        return weights.first if weights.global_weight == 1.0 else weights.second
    return blend_name


def _open(frame: pd.DataFrame) -> BoolArray:
    if OPEN not in frame:
        return np.ones(len(frame), dtype=np.bool_)
    return np.asarray(frame[OPEN].to_numpy(dtype=np.bool_), dtype=np.bool_)


def calibrate(
    result: BacktestResult, column: str, rows: BoolArray | None = None
) -> QuantileCalibration:
    """Calibrate ``column``'s residuals on ``rows`` (default all) that are open with point > 0."""
    frame = result.predictions
    point = frame[column].to_numpy(np.float64)
    use = _open(frame) & (point > 0)
    if rows is not None:
        use &= rows
    return QuantileCalibration.fit(
        frame[ACTUAL].to_numpy(np.float64)[use],
        point[use],
        frame[HORIZON_DAY].to_numpy(np.int64)[use],
        horizon=int(frame[HORIZON_DAY].max()),
    )


def heldout_quantiles(
    result: BacktestResult, column: str, levels: Sequence[float]
) -> dict[float, FloatArray]:
    """``{level: quantile per row of result.predictions}``; fold k calibrated without fold k.

    Closed rows and rows whose point is 0 (the zero rule) get 0 at every level.
    """
    frame = result.predictions
    point = frame[column].to_numpy(np.float64)
    days = frame[HORIZON_DAY].to_numpy(np.int64)
    zero = ~_open(frame) | (point <= 0)
    fold_of = frame[FOLD].to_numpy()
    folds = pd.unique(fold_of)
    if len(folds) == 1:
        logger.warning("one backtest fold: quantile scores use the in-sample calibration")
    out = np.zeros((len(frame), len(levels)))
    for fold in folds:
        rows = fold_of == fold
        calibration = calibrate(result, column, ~rows if len(folds) > 1 else None)
        out[rows] = calibration.quantiles(point[rows], days[rows], levels, zero=zero[rows])
    return {float(level): out[:, k] for k, level in enumerate(levels)}


def _scores(actual: FloatArray, quantiles: Mapping[float, FloatArray]) -> dict[str, Any]:
    """Coverage per central interval (those whose ends were computed) and the M5 WQL."""
    coverage: dict[str, float] = {}
    for c in CENTRAL_INTERVALS:
        low, high = round((1 - c) / 2, 4), round((1 + c) / 2, 4)
        if low in quantiles and high in quantiles:
            coverage[f"{c:g}"] = interval_coverage(actual, quantiles[low], quantiles[high])
    m5: dict[float, npt.ArrayLike] = {lv: quantiles[lv] for lv in M5_LEVELS if lv in quantiles}
    wql = weighted_quantile_loss(actual, m5) if len(m5) == len(M5_LEVELS) else None
    return {"coverage": coverage, "wql": _finite(wql), "rows": int(actual.size)}


def _finite(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def _grouped(
    keys: npt.NDArray[Any], actual: FloatArray, quantiles: Mapping[float, FloatArray]
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for key in sorted(pd.unique(keys), key=str):
        rows = keys == key
        out[str(key)] = _scores(actual[rows], {lv: q[rows] for lv, q in quantiles.items()})
    return out


def quantile_report(
    result: BacktestResult, quantiles: Mapping[float, npt.ArrayLike]
) -> dict[str, Any]:
    """Scores of row-aligned ``quantiles`` on the open rows (JSON-ready, levels as ``%g``)."""
    frame = result.predictions
    is_open = _open(frame)
    actual = frame[ACTUAL].to_numpy(np.float64)[is_open]
    q = {float(lv): np.asarray(v, dtype=np.float64)[is_open] for lv, v in quantiles.items()}
    overall = _scores(actual, q)
    folds = [f.name for f in result.folds]
    per_fold = _grouped(frame[FOLD].to_numpy()[is_open], actual, q)
    return {
        "levels": [f"{lv:g}" for lv in q],
        "pinball": {f"{lv:g}": pinball_loss(actual, v, lv) for lv, v in q.items()},
        **overall,
        "per_fold": {name: per_fold[name] for name in folds if name in per_fold},
        "per_horizon_day": dict(
            sorted(
                _grouped(frame[HORIZON_DAY].to_numpy()[is_open], actual, q).items(),
                key=lambda item: int(item[0]),
            )
        ),
        "per_family": _grouped(frame[FAMILY].astype(str).to_numpy()[is_open], actual, q),
    }


def heldout_report(result: BacktestResult, column: str) -> dict[str, Any]:
    """:func:`quantile_report` of ``column``'s held-out quantiles at ``REPORT_LEVELS``."""
    report = quantile_report(result, heldout_quantiles(result, column, REPORT_LEVELS))
    return {"column": column, **report}


def coverage_table(report: Mapping[str, Any]) -> Table:
    """Return a rich table: interval coverage and weighted quantile loss per fold, then all."""
    column = report.get("column", "")
    table = Table(title=f"held-out quantile coverage of {column}")
    table.add_column("fold")
    intervals = list(report["coverage"])
    for interval in intervals:
        table.add_column(f"{float(interval):.0%}", justify="right")
    table.add_column("WQL (M5 levels)", justify="right")
    rows = [*report["per_fold"].items(), ("all", report)]
    for name, scores in rows:
        cells = [f"{scores['coverage'][i]:.1%}" for i in intervals]
        wql = scores["wql"]
        table.add_row(
            name,
            *cells,
            "-" if wql is None else f"{wql:.4f}",
            style="bold" if name == "all" else None,
        )
    return table
