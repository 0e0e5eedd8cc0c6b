"""Backtest XGBForecaster on the real Favorita data next to baselines and mlforecast peers.

Usage (the bench as recorded in bench/RESULTS.md):
    .venv/bin/python bench/backtest_xgboost.py --data-dir ../shared/data/favorita-store-sales \
        --folds 4 --feature-sets required,extended --peers lgbm --train-start 2015-01-01 \
        --exclude-quake --eta 0.1 --rounds 1000 --out bench/backtest_xgboost.json
Prototype on the main fold only: ``--folds 1``; folds 3-4 only: ``--folds 2 --drop-last-days 32``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from favorita_frame import load_canonical

from retail_forecast.config import FEATURE_PRESETS, XGBoostConfig
from retail_forecast.features.builder import (
    FeatureBuilder,
    FeatureSpec,
    panel_from_frame,
)
from retail_forecast.models.xgboost import XGBForecaster
from retail_forecast.schema import DATE, FAMILY, PROMO, STORE, TARGET
from retail_forecast.training.backtest import run_backtest

logger = logging.getLogger("bench")


class MLForecastPeer:
    """mlforecast with the seed's features (lags 1/7/14, rolling means 7/14 of lag 1, calendar,
    onpromotion as future exogenous, store/family static categoricals), recursive, log1p."""

    def __init__(self, model: Any, *, train_start: str | None) -> None:
        self.model = model
        self.train_start = train_start

    @staticmethod
    def _frame(sales: pd.DataFrame) -> pd.DataFrame:
        out = pd.DataFrame(
            {
                "unique_id": sales[STORE].astype(str) + "|" + sales[FAMILY].astype(str),
                "ds": sales[DATE],
                "store_nbr": pd.Categorical(sales[STORE]),
                "family": pd.Categorical(sales[FAMILY].astype(str)),
                PROMO: sales[PROMO].astype(np.float64),
            }
        )
        if TARGET in sales:
            out["y"] = np.log1p(sales[TARGET].to_numpy(dtype=np.float64))
        return out

    def fit(self, history: pd.DataFrame) -> MLForecastPeer:
        from mlforecast import MLForecast
        from mlforecast.lag_transforms import RollingMean

        if self.train_start is not None:
            start = pd.Timestamp(self.train_start) - pd.Timedelta(days=14)
            history = history[history[DATE] >= start]
        self.fcst_ = MLForecast(
            models={"m": self.model},
            freq="D",
            lags=[1, 7, 14],
            lag_transforms={1: [RollingMean(window_size=7), RollingMean(window_size=14)]},
            date_features=["dayofweek", "month", "year"],
            num_threads=1,
        )
        started = time.perf_counter()
        self.fcst_.fit(self._frame(history), static_features=["store_nbr", "family"])
        self.fit_seconds_ = time.perf_counter() - started
        return self

    def predict(self, history: pd.DataFrame, future: pd.DataFrame) -> pd.DataFrame:
        x_df = self._frame(future)[["unique_id", "ds", PROMO]]
        horizon = int((future[DATE].max() - history[DATE].max()).days)
        pred = self.fcst_.predict(h=horizon, X_df=x_df)
        merged = x_df.merge(pred, on=["unique_id", "ds"], how="left")
        out = future.copy()
        out[TARGET] = np.clip(np.expm1(merged["m"].to_numpy(dtype=np.float64)), 0.0, None)
        return out


def time_features(sales: pd.DataFrame) -> dict[str, float]:
    """Wall seconds to build the features of the full panel: ours and mlforecast's preprocess."""
    from mlforecast import MLForecast
    from mlforecast.lag_transforms import RollingMean

    out: dict[str, float] = {}
    for name in ("required", "extended"):
        started = time.perf_counter()
        panel = panel_from_frame(sales)
        builder = FeatureBuilder.from_frame(sales, FeatureSpec.named(name))
        builder.panel_features(panel)
        out[f"feature_build_{name}_s"] = round(time.perf_counter() - started, 3)
    frame = MLForecastPeer._frame(sales)
    fcst = MLForecast(
        models={},
        freq="D",
        lags=[1, 7, 14],
        lag_transforms={1: [RollingMean(window_size=7), RollingMean(window_size=14)]},
        date_features=["dayofweek", "month", "year"],
    )
    started = time.perf_counter()
    fcst.preprocess(frame, static_features=["store_nbr", "family"], dropna=False)
    out["mlforecast_preprocess_s"] = round(time.perf_counter() - started, 3)
    return out


def factories(args: argparse.Namespace) -> dict[str, Callable[[], Any]]:
    import lightgbm as lgb
    import xgboost as xgb

    holidays = pd.read_csv(args.data_dir / "holidays_events.csv")
    xcfg = XGBoostConfig(
        n_estimators=args.rounds,
        learning_rate=args.eta,
        max_depth=args.max_depth,
        train_start=args.train_start,
        nthread=2,
        refit_full=args.refit_full,
        exclude_ranges=(("2016-04-16", "2016-05-31"),) if args.exclude_quake else (),
    )
    out: dict[str, Callable[[], Any]] = {}
    for name in [n for n in args.feature_sets.split(",") if n]:
        out[f"xgboost_{name}"] = lambda n=name: XGBForecaster(
            xcfg, FEATURE_PRESETS[n], horizon=16, holidays=holidays
        )
    peers = [p for p in args.peers.split(",") if p]
    if "lgbm" in peers:
        out["mlforecast_lgbm"] = lambda: MLForecastPeer(
            lgb.LGBMRegressor(
                n_estimators=args.peer_rounds,
                learning_rate=args.peer_eta,
                num_leaves=args.peer_leaves,
                n_jobs=2,
                random_state=0,
                verbose=-1,
            ),
            train_start=args.train_start,
        )
    if "xgb" in peers:
        out["mlforecast_xgb"] = lambda: MLForecastPeer(
            xgb.XGBRegressor(
                n_estimators=args.peer_rounds,
                learning_rate=args.peer_eta,
                max_depth=8,
                tree_method="hist",
                enable_categorical=True,
                max_cat_to_onehot=1,
                n_jobs=2,
                random_state=0,
            ),
            train_start=args.train_start,
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--data-dir", type=Path, default=Path("../shared/data/favorita-store-sales")
    )
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--feature-sets", default="required,extended")
    parser.add_argument("--peers", default="lgbm")
    parser.add_argument("--train-start", default="2015-06-01")
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--peer-rounds", type=int, default=300)
    parser.add_argument("--peer-eta", type=float, default=0.1)
    parser.add_argument("--peer-leaves", type=int, default=63)
    parser.add_argument("--eta", type=float, default=0.05)
    parser.add_argument("--max-depth", type=int, default=8)
    parser.add_argument("--refit-full", action="store_true")
    parser.add_argument("--exclude-quake", action="store_true")
    parser.add_argument("--skip-feature-timing", action="store_true")
    # drop the last N days: with N = 32 and --folds 2 this runs exactly folds 3 and 4 (same
    # windows, same training data), so the folds can run as two processes
    parser.add_argument("--drop-last-days", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    sales = load_canonical(args.data_dir)
    if args.drop_last_days:
        last = sales[DATE].max() - pd.Timedelta(days=args.drop_last_days)
        sales = sales[sales[DATE] <= last].reset_index(drop=True)
    report: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}
    if not args.skip_feature_timing:
        report["timing"] = time_features(sales)
        logger.info("timing %s", report["timing"])
    result = run_backtest(sales, factories(args), folds=args.folds, horizon=16, progress=False)
    report["backtest"] = result.to_dict()
    for fold in report["backtest"]["folds"]:
        print(fold["start"], json.dumps(fold["rmsle"]), json.dumps(fold["seconds"]))
    print("mean", json.dumps(report["backtest"]["mean"], indent=1))
    if args.out is not None:
        args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
