"""Rolling-origin evaluation: refit per fold, forecast the horizon, score models and baselines.

Windows (docs/DESIGN.md, section 2): the last fold starts ``horizon`` days before the data end
(``forecast.horizon``), earlier folds start ``step`` days apart before it (``backtest.step``,
the horizon unless set). Each model is refitted on the data before its window and forecasts it
with the window's onpromotion (a known-future covariate) and the closures known in advance.
Scores cover the open days of a window: every model answers 0 on a closed day, so scoring it
(0 against 0) would only flatter models and baselines alike. The rows stay in
``predictions`` with ``open`` False.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd
from rich.progress import Progress
from rich.table import Table

from retail_forecast.closed_days import closed_rows
from retail_forecast.errors import DataValidationError
from retail_forecast.models.baselines import baseline_factories
from retail_forecast.schema import DATE, FAMILY, IS_CLOSED, PROMO, STORE, TARGET
from retail_forecast.training.metrics import grouped_rmsle, rmsle

logger = logging.getLogger(__name__)

FOLD = "fold"
ACTUAL = "actual"
HORIZON_DAY = "horizon_day"
OPEN = "open"
BASELINES = ("seasonal_naive", "mean_14", "last_value", "zero")
FloatArray = np.ndarray[Any, np.dtype[np.float64]]


class Forecaster(Protocol):
    """What the backtest needs of a model (XGBoost, LSTM, hybrid and baselines alike)."""

    def fit(self, history: pd.DataFrame) -> Any: ...

    def predict(self, history: pd.DataFrame, future: pd.DataFrame) -> pd.DataFrame: ...


@dataclass(frozen=True)
class Fold:
    """One evaluation window: forecast ``start`` .. ``end`` from data before ``start``."""

    start: pd.Timestamp
    end: pd.Timestamp

    @property
    def name(self) -> str:
        return str(self.start.date())


def fold_windows(last_date: pd.Timestamp, *, folds: int, horizon: int, step: int) -> list[Fold]:
    """Return the windows, latest first: the last ends on ``last_date``."""
    out = []
    for k in range(folds):
        end = last_date - pd.Timedelta(days=k * step)
        out.append(Fold(start=end - pd.Timedelta(days=horizon - 1), end=end))
    return out


@dataclass
class BacktestResult:
    """Per-row fold predictions (one column per model) and the scores derived from them."""

    folds: list[Fold]
    models: list[str]
    predictions: pd.DataFrame
    seconds: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def scored(self) -> pd.DataFrame:
        """The rows that count in every score: the open days (all rows of an older frame)."""
        frame = self.predictions
        return frame[frame[OPEN].to_numpy(dtype=np.bool_)] if OPEN in frame else frame

    def fold_rmsle(self) -> dict[str, dict[str, float]]:
        """``{fold start: {model: rmsle}}`` over the open days."""
        return grouped_rmsle(self.scored, by=FOLD, actual=ACTUAL, models=self.models)

    def mean_rmsle(self) -> dict[str, float]:
        """Mean over folds of each model's fold RMSLE."""
        per_fold = self.fold_rmsle()
        return {m: float(np.mean([per_fold[f.name][m] for f in self.folds])) for m in self.models}

    def to_dict(self) -> dict[str, Any]:
        per_fold = self.fold_rmsle()
        return {
            "folds": [
                {
                    "start": f.name,
                    "end": str(f.end.date()),
                    "rmsle": per_fold[f.name],
                    "seconds": self.seconds.get(f.name, {}),
                }
                for f in self.folds
            ],
            "mean": self.mean_rmsle(),
            "per_family": grouped_rmsle(self.scored, by=FAMILY, actual=ACTUAL, models=self.models),
            "per_horizon_day": grouped_rmsle(
                self.scored, by=HORIZON_DAY, actual=ACTUAL, models=self.models
            ),
            "closed_rows_unscored": int(len(self.predictions) - len(self.scored)),
        }


def run_backtest(
    sales: pd.DataFrame,
    models: Mapping[str, Callable[[], Forecaster]],
    *,
    folds: int = 4,
    horizon: int,
    step: int | None = None,
    progress: bool = False,
    include_baselines: bool = True,
    parallel: Collection[str] = (),
) -> BacktestResult:
    """Refit every model per fold on the canonical frame before the window and score it.

    Each model named in ``parallel`` runs its folds in a thread of its own, beside the others:
    XGBoost and PyTorch release the GIL while they fit, so two single-threaded models keep two
    cores busy. The rest run in the calling thread afterwards. Every model fits its folds
    oldest first either way, so the results do not depend on running side by side: each fit
    starts from a fresh, seeded model, and what a factory carries over (XGBoost's round count)
    only goes from older folds to newer ones.
    """
    factories: dict[str, Callable[[], Forecaster]] = dict(models)
    if include_baselines:
        factories.update({k: v for k, v in baseline_factories().items() if k not in factories})
    unknown = sorted(set(parallel) - set(factories))
    if unknown:
        raise DataValidationError(f"parallel names unknown models {unknown}")
    last_date = pd.Timestamp(sales[DATE].max())
    step = horizon if step is None else step
    windows = fold_windows(last_date, folds=folds, horizon=horizon, step=step)
    if windows[-1].start - pd.Timedelta(days=28) < sales[DATE].min():
        raise DataValidationError(f"{folds} folds of {horizon} days need more history")
    with Progress(disable=not progress, transient=True) as bar:
        runner = _FoldRunner(sales, factories, windows, bar)
        runner.run_all(parallel)
    frames = []
    for fold in windows:
        out = _fold_frame(runner.window_of[fold.name], fold)
        for name in factories:
            out[name] = runner.values[fold.name, name]
        frames.append(out)
    predictions = pd.concat(frames, ignore_index=True)
    seconds = {f: {name: runner.seconds[f][name] for name in factories} for f in runner.seconds}
    return BacktestResult(windows, list(factories), predictions, seconds)


class _FoldRunner:
    """Fits every model on every fold: some in lanes of their own, the rest one by one."""

    def __init__(
        self,
        sales: pd.DataFrame,
        factories: dict[str, Callable[[], Forecaster]],
        windows: list[Fold],
        bar: Progress,
    ) -> None:
        self.sales, self.factories, self.windows, self.bar = sales, factories, windows, bar
        self.task = bar.add_task("backtest", total=len(windows) * len(factories))
        self.window_of = {fold.name: _window(sales, fold) for fold in windows}
        self.values: dict[tuple[str, str], FloatArray] = {}
        self.seconds: dict[str, dict[str, float]] = {fold.name: {} for fold in windows}
        self.failed = threading.Event()

    def run_all(self, parallel: Collection[str]) -> None:
        threaded = [name for name in self.factories if name in parallel]
        if len(threaded) > 1:
            with ThreadPoolExecutor(len(threaded), thread_name_prefix="backtest") as pool:
                for future in [pool.submit(self.lane, name) for name in threaded]:
                    future.result()  # re-raises a lane's error
        else:
            threaded = []
        for fold in self.oldest_first:  # the rest one by one, sharing each fold's history
            history = self.history(fold)
            for name in self.factories:
                if name not in threaded:
                    self.run(name, fold, history)

    @property
    def oldest_first(self) -> list[Fold]:
        """The folds in the order models fit them.

        A model may carry what it learnt on a fold to the newer ones (XGBoost's round count,
        ``xgboost.early_stop_once``), never to older ones.
        """
        return self.windows[::-1]

    def lane(self, name: str) -> None:
        """Fit and score one model on every fold, oldest first (stops if a lane failed)."""
        for fold in self.oldest_first:
            if self.failed.is_set():
                return
            self.run(name, fold, self.history(fold))  # one copy a lane at a time

    def history(self, fold: Fold) -> pd.DataFrame:
        return self.sales[self.sales[DATE] < fold.start]

    def run(self, name: str, fold: Fold, history: pd.DataFrame) -> None:
        self.bar.update(self.task, description=f"fold {fold.name}: {name}")
        try:
            self.values[fold.name, name], self.seconds[fold.name][name] = _run_fold(
                name, self.factories[name], history, self.window_of[fold.name], fold
            )
        except BaseException:
            self.failed.set()  # the other lanes stop at their next fold
            raise
        self.bar.advance(self.task)


def _run_fold(
    name: str,
    factory: Callable[[], Forecaster],
    history: pd.DataFrame,
    window: pd.DataFrame,
    fold: Fold,
) -> tuple[FloatArray, float]:
    """Fit a fresh model on ``history``; return its forecasts of ``window`` and the seconds."""
    started = time.perf_counter()
    values = _forecast(factory, history, window)
    seconds = round(time.perf_counter() - started, 2)
    is_open = ~closed_rows(window)
    score = rmsle(window[TARGET].to_numpy(dtype=np.float64)[is_open], values[is_open])
    logger.info("fold %s %s rmsle=%.4f seconds=%.1f", fold.name, name, score, seconds)
    return values, seconds


def _window(sales: pd.DataFrame, fold: Fold) -> pd.DataFrame:
    return sales[(sales[DATE] >= fold.start) & (sales[DATE] <= fold.end)]


def _fold_frame(window: pd.DataFrame, fold: Fold) -> pd.DataFrame:
    out = window[[DATE, STORE, FAMILY]].reset_index(drop=True)
    out.insert(0, FOLD, fold.name)
    out[HORIZON_DAY] = (out[DATE] - fold.start).dt.days.to_numpy() + 1
    out[ACTUAL] = window[TARGET].to_numpy(dtype=np.float64)
    out[OPEN] = ~closed_rows(window)
    return out


def _forecast(
    factory: Callable[[], Forecaster], history: pd.DataFrame, window: pd.DataFrame
) -> FloatArray:
    future = window[[DATE, STORE, FAMILY, PROMO]].reset_index(drop=True)
    if IS_CLOSED in window.columns:  # closures are known in advance, as test.csv's open flag
        shut = window[IS_CLOSED].to_numpy(dtype=np.bool_)
        if shut.any():
            future[IS_CLOSED] = shut
    model = factory()
    model.fit(history)
    predicted = model.predict(history, future)
    values = predicted[TARGET].to_numpy(dtype=np.float64)
    if len(values) != len(future) or np.isnan(values).any() or (values < 0).any():
        raise DataValidationError("a model returned missing, negative or misaligned forecasts")
    return values


def summary_table(result: BacktestResult) -> Table:
    """Return a rich table: one row per model, RMSLE per fold and the mean, best first."""
    per_fold = result.fold_rmsle()
    means = result.mean_rmsle()
    table = Table(title="backtest RMSLE (lower is better)")
    table.add_column("model")
    for fold in result.folds:
        table.add_column(fold.name, justify="right")
    table.add_column("mean", justify="right", style="bold")
    for model in sorted(result.models, key=means.__getitem__):
        cells = [f"{per_fold[f.name][model]:.4f}" for f in result.folds]
        table.add_row(model, *cells, f"{means[model]:.4f}")
    return table
