"""Held-out coverage of calibration variants on one backtest's predictions (issue: quantiles).

Runs the rolling-origin XGBoost backtest once (the product's ``run_backtest``, the data set's
profile), then scores the 50 / 80 / 95 % central intervals per fold for variants of the conformal
calibration (models/quantiles.py): which folds calibrate fold k (every other fold, as the
product's ``heldout_quantiles`` does, or only the folds before it), the number of volume
buckets, and the finite-sample conformal correction (a cell of n residuals widens each end by
about 1/n of a level). Nothing here changes the product; it measures before a change.

Usage (real data):
    .venv/bin/python bench/quantile_variants.py --data-dir ../shared/data/favorita-store-sales \
        --config favorita --predictions /tmp/qv/pred.parquet
``--predictions`` caches the backtest's rows: a second run with the same path skips the fits.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from retail_forecast.commands.common import load_data_settings
from retail_forecast.data_processing.dataset import build_dataset
from retail_forecast.models.quantiles import QuantileCalibration
from retail_forecast.training.backtest import ACTUAL, FOLD, HORIZON_DAY, OPEN, run_backtest
from retail_forecast.training.factories import model_factories

ENDS = {"50": (0.25, 0.75), "80": (0.1, 0.9), "95": (0.025, 0.975)}
LEVELS = sorted({level for pair in ENDS.values() for level in pair})
FloatArray = npt.NDArray[np.float64]
Quantiles = dict[float, FloatArray]


def predictions(args: argparse.Namespace) -> pd.DataFrame:
    """The backtest's rows (read from ``--predictions`` when it exists, else run and saved)."""
    cache = Path(args.predictions) if args.predictions else None
    if cache is not None and cache.is_file():
        return pd.read_parquet(cache)
    settings, local = load_data_settings(args.data_dir, config=args.config)
    built = build_dataset(local, settings.data, horizon=settings.forecast.horizon)
    made = model_factories(settings, built.holidays, side_by_side=False).as_dict()
    result = run_backtest(
        built.sales,
        {"xgboost": made["xgboost"]},
        folds=args.folds,
        horizon=settings.forecast.horizon,
        step=settings.backtest.step,
        progress=False,
    )
    frame = result.predictions
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(cache)
    return frame


class Variants:
    """Score calibration variants on the backtest rows of one model column."""

    def __init__(self, frame: pd.DataFrame, column: str = "xgboost") -> None:
        self.point = frame[column].to_numpy(np.float64)
        self.actual = frame[ACTUAL].to_numpy(np.float64)
        self.day = frame[HORIZON_DAY].to_numpy(np.int64)
        self.open = frame[OPEN].to_numpy(np.bool_)
        self.fold = frame[FOLD].astype(str).to_numpy()
        self.folds = sorted(set(self.fold.tolist()), reverse=True)  # F1 = the latest window
        self.calibratable = self.open & (self.point > 0)
        self.horizon = int(self.day.max())

    def earlier(self, fold: str) -> list[str]:
        """The folds before ``fold``; the earliest fold falls back to every other one."""
        before = [f for f in self.folds if f < fold]
        return before or [f for f in self.folds if f != fold]

    def others(self, fold: str) -> list[str]:
        return [f for f in self.folds if f != fold]

    def quantiles(
        self,
        fold: str,
        calibrate_on: Callable[[str], Sequence[str]],
        *,
        buckets: int | None = None,
        finite_sample: bool = False,
    ) -> Quantiles:
        train = self.calibratable & np.isin(self.fold, list(calibrate_on(fold)))
        calibration = QuantileCalibration.fit(
            self.actual[train],
            self.point[train],
            self.day[train],
            horizon=self.horizon,
            buckets=buckets,
        )
        levels = list(LEVELS)
        if finite_sample:  # split conformal's ceil((n + 1) level) / n, n residuals a cell
            n_cell = train.sum() / (self.horizon * (calibration.edges.size + 1))
            levels = [lv - (1 - lv) / n_cell if lv < 0.5 else lv + lv / n_cell for lv in LEVELS]
        rows = self.fold == fold
        values = calibration.quantiles(
            self.point[rows], self.day[rows], levels, zero=~self.calibratable[rows]
        )
        out: Quantiles = {}
        for k, level in enumerate(LEVELS):
            full = np.zeros(len(self.point))
            full[rows] = values[:, k]
            out[level] = full
        return out

    def coverage(self, variant: Callable[[str], Quantiles]) -> dict[str, dict[str, float]]:
        """{fold: {interval: coverage %}} over each fold's open rows."""
        table: dict[str, dict[str, float]] = {}
        for fold in self.folds:
            q = variant(fold)
            rows = (self.fold == fold) & self.open
            table[fold] = {
                name: round(
                    100 * float(((q[lo] <= self.actual) & (self.actual <= q[hi]))[rows].mean()), 2
                )
                for name, (lo, hi) in ENDS.items()
            }
        return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--config", default=None)
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--predictions", default=None, help="parquet cache of the backtest rows")
    parser.add_argument("--out", default=None, help="write the table as JSON here")
    args = parser.parse_args()
    v = Variants(predictions(args))
    variants: dict[str, Callable[[str], Quantiles]] = {
        "every other fold (the product's)": lambda f: v.quantiles(f, v.others),
        "every other fold, 4 buckets": lambda f: v.quantiles(f, v.others, buckets=4),
        "every other fold, finite-sample": lambda f: v.quantiles(f, v.others, finite_sample=True),
        "earlier folds": lambda f: v.quantiles(f, v.earlier),
        "earlier folds, 4 buckets": lambda f: v.quantiles(f, v.earlier, buckets=4),
        "earlier folds, finite-sample": lambda f: v.quantiles(f, v.earlier, finite_sample=True),
    }
    report = {name: v.coverage(variant) for name, variant in variants.items()}
    print("variant | " + " | ".join(f"{f} 50/80/95" for f in v.folds))
    for name, table in report.items():
        cells = " | ".join(" / ".join(f"{table[f][c]:.1f}" for c in ENDS) for f in v.folds)
        print(f"{name} | {cells}")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
