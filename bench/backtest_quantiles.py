"""Held-out quantiles of the product's backtest next to mlforecast's conformal intervals.

One run, the same folds, the same rows (open days only), the same scoring functions
(training/quantile_scores.quantile_report over training/metrics.py):
- ours: the rolling-origin backtest (training/backtest.run_backtest) of the shipped models, the
  served column's quantiles from ``heldout_quantiles`` (fold k calibrated on the other folds);
- the peer: mlforecast LightGBM, recursive, on the strongest peer recipe, with conformal
  prediction intervals (``PredictionIntervals(n_windows, h=horizon)``) fitted on each fold's
  history and turned into quantiles (central interval c gives the levels (1 -/+ c) / 2; the
  median is its point forecast).

The peer recipe: LightGBM (500 trees, learning rate 0.05, 63 leaves), lags 1..7, 14, 21, 28,
rolling means 7/14/28/56 of lag 1, seasonal (7-day) rolling means over 4 and 8 weeks of lag 7,
date features dayofweek/day/month/year plus the data set's national-holiday flag (the same
holidays table our features read), onpromotion and the known closures as exogenous columns,
store and family as static categoricals, target log1p (``MLForecastPeer._frame``), trained from
the profile's ``xgboost.train_start`` (all history without one; the profile's exclude_ranges
are ours only), the ``dead_series_days`` zero rule. mlforecast's default method,
``conformal_distribution``: per series and horizon day, the ``n_windows`` absolute log errors
of its own cross-validation windows (one extra fit per fold). Its quantiles do not cross
(the paths are symmetric around the point); each row is still sorted, and the JSON counts the
rows that needed it (``crossed_rows``).

Usage (real data; the lead's run):
    .venv/bin/python bench/backtest_quantiles.py \
        --data-dir ../shared/data/favorita-store-sales --config favorita \
        --out bench/backtest_quantiles.json
A generated panel (its own retail_forecast.toml is read from the data directory):
    .venv/bin/retail-forecast data generate --shape closed-sundays --stores 6 --families 8 \
        --out /tmp/panel && .venv/bin/python bench/backtest_quantiles.py --data-dir /tmp/panel
Faster: ``--models xgboost``, ``--folds 2``, ``--skip-peer``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from backtest_xgboost import MLForecastPeer

from retail_forecast.closed_days import closed_rows
from retail_forecast.config import Settings, settings_for
from retail_forecast.data_processing.dataset import BuiltDataset, build_dataset
from retail_forecast.features.calendar import national_holiday_dates
from retail_forecast.schema import DATE, FAMILY, IS_CLOSED, PROMO, STORE, TARGET
from retail_forecast.settings_profile import profile_next_to, resolve_profile
from retail_forecast.training.backtest import ACTUAL, FOLD, OPEN, BacktestResult, Fold, run_backtest
from retail_forecast.training.factories import model_factories, side_by_side_models
from retail_forecast.training.heldout_blend import add_hybrid
from retail_forecast.training.metrics import grouped_rmsle
from retail_forecast.training.quantile_scores import (
    REPORT_LEVELS,
    heldout_quantiles,
    quantile_report,
    served_column,
)

logger = logging.getLogger("bench")

MODEL_NAMES: Final = ("xgboost", "lstm", "hybrid")
PEER: Final = "mlforecast_conformal"
# The recipe's longest look-back: RollingMean(56) of lag 1 and SeasonalRollingMean(7, 8) of
# lag 7 both reach 56 days back, so history from train_start - 56 days makes the first row
# with every feature (mlforecast drops rows with a missing one) fall on train_start.
LOOKBACK_DAYS: Final = 56
FloatArray = np.ndarray[Any, np.dtype[np.float64]]


class HolidayFlag:
    """A date feature for mlforecast: 1.0 on the data set's national days off."""

    __name__ = "is_national_holiday"  # mlforecast names a callable date feature by it

    def __init__(self, dates: Sequence[str]) -> None:
        self.dates = pd.DatetimeIndex(pd.to_datetime(list(dates)))

    def __call__(self, dates: pd.DatetimeIndex) -> FloatArray:
        return np.asarray(dates.normalize().isin(self.dates), dtype=np.float64)


class ConformalPeer(MLForecastPeer):
    """The strongest peer recipe with conformal intervals, target log1p (``_frame``'s ``y``).

    The intervals are computed on that log target (mlforecast sees ``y = log1p(sales)``; no
    target transform of its own), so they are conformal in log space like ours, and expm1 maps
    their ends to sales without changing coverage. The dead-series rule (no sale in the last
    ``dead_series_days`` days before the origin) and known closures answer 0 at every level.
    """

    def __init__(
        self,
        model: Any,
        *,
        train_start: str | None,
        windows: int,
        horizon: int,
        holidays: Sequence[str],
        dead_series_days: int,
    ) -> None:
        super().__init__(model, train_start=train_start)
        self.windows, self.horizon, self.holidays = windows, horizon, list(holidays)
        self.dead_series_days = dead_series_days

    def _exogenous(self, frame: pd.DataFrame, sales: pd.DataFrame) -> pd.DataFrame:
        if IS_CLOSED in sales:  # closures are known in advance (as our models get them)
            frame["is_closed"] = sales[IS_CLOSED].to_numpy(dtype=np.float64)
        return frame

    def fit(self, history: pd.DataFrame) -> ConformalPeer:
        from mlforecast import MLForecast
        from mlforecast.lag_transforms import RollingMean, SeasonalRollingMean
        from mlforecast.utils import PredictionIntervals

        if self.train_start is not None:
            start = pd.Timestamp(self.train_start) - pd.Timedelta(days=LOOKBACK_DAYS)
            history = history[history[DATE] >= start]
        date_features: list[Any] = ["dayofweek", "day", "month", "year"]
        if self.holidays:
            date_features.append(HolidayFlag(self.holidays))
        self.fcst_ = MLForecast(
            models={"m": self.model},
            freq="D",
            lags=[1, 2, 3, 4, 5, 6, 7, 14, 21, 28],
            lag_transforms={
                1: [RollingMean(window_size=w) for w in (7, 14, 28, 56)],
                7: [SeasonalRollingMean(7, 4), SeasonalRollingMean(7, 8)],
            },
            date_features=date_features,
            num_threads=1,
        )
        started = time.perf_counter()
        self.fcst_.fit(
            self._exogenous(self._frame(history), history),
            static_features=["store_nbr", "family"],
            prediction_intervals=(  # windows=0: point forecasts only (bench/backtest_hybrid.py)
                PredictionIntervals(n_windows=self.windows, h=self.horizon)
                if self.windows
                else None
            ),
        )
        self.fit_seconds_ = time.perf_counter() - started
        return self

    def predict(self, history: pd.DataFrame, future: pd.DataFrame) -> pd.DataFrame:
        """Point forecasts with the zero rule and known closures (the recipe's point model)."""
        x_df = self._frame(future)[["unique_id", "ds", PROMO]]
        if IS_CLOSED in history:  # fitted with the closures: the window's, known in advance
            x_df["is_closed"] = closed_rows(future).astype(np.float64)
        horizon = int((future[DATE].max() - history[DATE].max()).days)
        pred = x_df.merge(self.fcst_.predict(h=horizon, X_df=x_df), on=["unique_id", "ds"])
        point = np.clip(np.expm1(pred["m"].to_numpy(dtype=np.float64)), 0.0, None)
        point[self._dead(history, future) | closed_rows(future)] = 0.0
        out = future.copy()
        out[TARGET] = point
        return out

    def predict_quantiles(
        self, history: pd.DataFrame, future: pd.DataFrame, levels: Sequence[float]
    ) -> tuple[FloatArray, FloatArray, int]:
        """Point, quantiles (rows x levels, sorted per row) and how many rows were sorted."""
        intervals: list[int | float] = sorted({central_interval(lv) for lv in levels if lv != 0.5})
        x_df = self._exogenous(self._frame(future), future)
        x_df = x_df[[c for c in ("unique_id", "ds", PROMO, "is_closed") if c in x_df]]
        horizon = int((future[DATE].max() - history[DATE].max()).days)
        pred = x_df.merge(
            self.fcst_.predict(h=horizon, X_df=x_df, level=intervals),
            on=["unique_id", "ds"],
            how="left",
        )
        columns = [_interval_column(lv) for lv in levels]
        logs = pred[columns].to_numpy(dtype=np.float64)
        values = np.clip(np.expm1(logs), 0.0, None)
        crossed = int((np.diff(values, axis=1) < 0).any(axis=1).sum())
        values = np.sort(values, axis=1)
        point = np.clip(np.expm1(pred["m"].to_numpy(dtype=np.float64)), 0.0, None)
        zero = self._dead(history, future) | closed_rows(future)
        point[zero], values[zero] = 0.0, 0.0
        return point, values, crossed

    def _dead(self, history: pd.DataFrame, future: pd.DataFrame) -> np.ndarray[Any, Any]:
        if self.dead_series_days == 0:
            return np.zeros(len(future), dtype=np.bool_)
        last = history[DATE].max() - pd.Timedelta(days=self.dead_series_days - 1)
        recent = history[history[DATE] >= last].groupby([STORE, FAMILY], observed=True)
        sold = recent[TARGET].max().gt(0).rename("sold").reset_index()
        keys = future[[STORE, FAMILY]].merge(sold, on=[STORE, FAMILY], how="left")
        return ~keys["sold"].fillna(False).to_numpy(dtype=np.bool_)


def central_interval(level: float) -> int:
    """The central interval (in %) whose end is the quantile ``level``: 0.1 and 0.9 give 80."""
    return round(abs(2.0 * level - 1.0) * 100)


def _interval_column(level: float) -> str:
    return "m" if level == 0.5 else f"m-{'lo' if level < 0.5 else 'hi'}-{central_interval(level)}"


def load(data_dir: Path, config: str | None) -> tuple[Settings, BuiltDataset]:
    """The settings (``--config``, else the data set's own profile; no .env) and the data."""
    profile = resolve_profile(config) if config else profile_next_to(data_dir)
    settings = settings_for(profile, _env_file=None)
    built = build_dataset(data_dir, settings.data, horizon=settings.forecast.horizon)
    return settings, built


def our_backtest(
    settings: Settings, built: BuiltDataset, names: Sequence[str], folds: int
) -> tuple[BacktestResult, str]:
    """The product's backtest of ``names`` (hybrid: the held-out blend) and the served column."""
    fitted = [n for n in names if n != "hybrid"]
    parallel = side_by_side_models(settings, fitted)
    factories = model_factories(settings, built.holidays, side_by_side=bool(parallel)).as_dict()
    result = run_backtest(
        built.sales,
        {name: factories[name] for name in fitted},
        folds=folds,
        horizon=settings.forecast.horizon,
        step=settings.backtest.step,
        parallel=parallel,
    )
    if "hybrid" not in names:
        return result, fitted[0]
    result, weights = add_hybrid(result)
    return result, served_column(weights)


def make_peer(settings: Settings, built: BuiltDataset, windows: int, trees: int) -> ConformalPeer:
    import lightgbm as lgb

    model = lgb.LGBMRegressor(
        n_estimators=trees, learning_rate=0.05, num_leaves=63, n_jobs=2, random_state=0, verbose=-1
    )
    return ConformalPeer(
        model,
        train_start=settings.xgboost.train_start,
        windows=windows,
        horizon=settings.forecast.horizon,
        holidays=national_holiday_dates(built.holidays),
        dead_series_days=settings.xgboost.dead_series_days,
    )


def peer_backtest(
    sales: pd.DataFrame, result: BacktestResult, make: Any
) -> tuple[FloatArray, dict[float, FloatArray], dict[str, Any]]:
    """The peer on the backtest's own folds, aligned with ``result.predictions``' rows."""
    frame = result.predictions
    point = np.zeros(len(frame))
    values = np.zeros((len(frame), len(REPORT_LEVELS)))
    info: dict[str, Any] = {"seconds": {}, "crossed_rows": {}}
    for fold in result.folds:
        rows = (frame[FOLD] == fold.name).to_numpy()
        history, window = _fold_data(sales, fold)
        _check_aligned(frame[rows], window)
        started = time.perf_counter()
        peer = make().fit(history)
        future = window[[DATE, STORE, FAMILY, PROMO, *[c for c in (IS_CLOSED,) if c in window]]]
        point[rows], values[rows], crossed = peer.predict_quantiles(history, future, REPORT_LEVELS)
        info["seconds"][fold.name] = round(time.perf_counter() - started, 1)
        info["crossed_rows"][fold.name] = crossed
        logger.info("fold %s %s %.0f s", fold.name, PEER, info["seconds"][fold.name])
    return point, {lv: values[:, k] for k, lv in enumerate(REPORT_LEVELS)}, info


def _fold_data(sales: pd.DataFrame, fold: Fold) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The fold's history and window, selected as run_backtest selects them (same row order)."""
    history = sales[sales[DATE] < fold.start]
    window = sales[(sales[DATE] >= fold.start) & (sales[DATE] <= fold.end)]
    return history, window.reset_index(drop=True)


def _check_aligned(rows: pd.DataFrame, window: pd.DataFrame) -> None:
    for column in (DATE, STORE, FAMILY):
        if not np.array_equal(rows[column].to_numpy(), window[column].to_numpy()):
            raise RuntimeError(f"peer rows are not aligned with the backtest's ({column})")


def fold_rmsle(result: BacktestResult, point: FloatArray) -> dict[str, float]:
    """RMSLE of a row-aligned point forecast per fold, on the open rows."""
    frame = result.predictions.assign(point=point)
    scored = frame[frame[OPEN].to_numpy(dtype=np.bool_)]
    per_fold = grouped_rmsle(scored, by=FOLD, actual=ACTUAL, models=["point"])
    return {fold.name: per_fold[fold.name]["point"] for fold in result.folds}


def scores(
    result: BacktestResult, point: FloatArray, quantiles: dict[float, FloatArray]
) -> dict[str, Any]:
    """quantile_report (the shared scoring) plus the point forecast's RMSLE per fold."""
    report = quantile_report(result, quantiles)
    report["rmsle"] = fold_rmsle(result, point)
    return report


def markdown(ours: dict[str, Any], peer: dict[str, Any] | None, folds: Sequence[str]) -> str:
    """Per fold and mean: WQL, coverage of the 50/80/95 % intervals and RMSLE, ours vs peer."""
    sides = [("ours", ours)] + ([("peer", peer)] if peer is not None else [])
    head = ["fold"] + [
        f"{n} {what}" for what in ("WQL", "50%", "80%", "95%", "RMSLE") for n, _ in sides
    ]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for fold in [*folds, "mean"]:
        cells = [fold]
        for what in ("wql", "0.5", "0.8", "0.95", "rmsle"):
            for _, report in sides:
                value, fmt = _value(report, fold, what, folds)
                cells.append("-" if value is None else format(value, fmt))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _value(
    report: dict[str, Any], fold: str, what: str, folds: Sequence[str]
) -> tuple[float | None, str]:
    """One table cell; the mean row is the mean over folds (as the RMSLE's is)."""
    if fold == "mean":
        values = [_value(report, f, what, folds)[0] for f in folds]
        known = [v for v in values if v is not None]
        mean = float(np.mean(known)) if len(known) == len(values) else None
        return mean, ".1%" if what.startswith("0.") else ".4f"
    if what == "rmsle":
        return report["rmsle"][fold], ".4f"
    per_fold = report["per_fold"][fold]
    if what == "wql":
        return per_fold["wql"], ".4f"
    return per_fold["coverage"].get(what), ".1%"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--config", default=None, help="a profile file or a shipped name")
    parser.add_argument(
        "--models",
        default="xgboost,lstm,hybrid",
        help="xgboost,lstm,hybrid (the shipped models; default) or xgboost",
    )
    parser.add_argument("--folds", type=int, default=None, help="default: the settings' folds")
    parser.add_argument("--peer-windows", type=int, default=2, help="conformal n_windows (>= 2)")
    parser.add_argument("--peer-trees", type=int, default=500, help="the recipe: 500")
    parser.add_argument("--skip-peer", action="store_true")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = sorted(set(names) - set(MODEL_NAMES))
    if unknown or not names:
        parser.error(f"--models: unknown {unknown}; choose from {list(MODEL_NAMES)}")
    if "hybrid" in names:
        names = list(dict.fromkeys(["xgboost", "lstm", *names]))
    args.names = names
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.peer_windows < 2:
        parser.error("--peer-windows: conformal intervals need at least 2 windows")
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The whole bench: ours, then the peer on the same folds; the JSON-ready report."""
    settings, built = load(args.data_dir, args.config)
    started = time.perf_counter()
    result, column = our_backtest(
        settings, built, args.names, args.folds or settings.backtest.folds
    )
    ours_seconds = time.perf_counter() - started
    point = result.predictions[column].to_numpy(dtype=np.float64)
    report: dict[str, Any] = {
        "command": " ".join(["bench/backtest_quantiles.py", *args.argv]),
        "levels": list(REPORT_LEVELS),
        "horizon": settings.forecast.horizon,
        "folds": [f.name for f in result.folds],
        "served_column": column,
        "ours_seconds": round(ours_seconds, 1),
        "ours": scores(result, point, heldout_quantiles(result, column, REPORT_LEVELS)),
        "peer": None,
        "backtest": result.to_dict(),
    }
    if not args.skip_peer:
        make = lambda: make_peer(settings, built, args.peer_windows, args.peer_trees)  # noqa: E731
        peer_point, peer_q, info = peer_backtest(built.sales, result, make)
        report["peer"] = {
            "name": PEER,
            "windows": args.peer_windows,
            **info,
            **scores(result, peer_point, peer_q),
        }
    return report


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    report = run(args)
    print(
        f"served column: {report['served_column']}; peer: {PEER if report['peer'] else 'skipped'}"
    )
    print(markdown(report["ours"], report["peer"], report["folds"]))
    if args.out is not None:
        args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
