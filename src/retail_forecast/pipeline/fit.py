"""build_dataset -> backtest -> final fit of both models -> blend -> ModelBundle."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from retail_forecast.artifacts import BundleWriter
from retail_forecast.config import FeatureConfig, Settings, XGBoostConfig
from retail_forecast.errors import ArtifactError
from retail_forecast.models.blend import BlendWeights
from retail_forecast.models.hybrid import HybridForecaster
from retail_forecast.models.lstm import LSTMForecaster
from retail_forecast.models.xgboost import XGBForecaster
from retail_forecast.monitoring.reference import write_reference
from retail_forecast.pipeline.build_dataset import BuiltDataset
from retail_forecast.schema import DATE, FAMILY, HORIZON, PROMO, STORE
from retail_forecast.training.backtest import BacktestResult, run_backtest
from retail_forecast.training.heldout_blend import add_hybrid
from retail_forecast.utils.io import write_parquet_atomic

logger = logging.getLogger(__name__)

HISTORY_FILE = "history.parquet"
HISTORY_DAYS = 120  # what serving keeps per series: >= every model's lookback + margin
CONFIG_SECTIONS = ("features", "xgboost", "lstm", "backtest")


@dataclass(frozen=True)
class TrainResult:
    """What ``train`` produced: the published bundle and the backtest behind its weights."""

    version: str
    path: Path
    backtest: BacktestResult
    weights: BlendWeights
    seconds: dict[str, float]
    forecaster: HybridForecaster


class XGBoostFactory:
    """Fresh XGBForecasters for the backtest and the final fit, in the order they are fitted.

    With ``xgboost.early_stop_once`` (and no fixed ``rounds``), the first model made early-stops
    on its validation days, and every later one trains that many rounds on all of its rows.
    The backtest fits the oldest fold first, whose validation days precede every test window,
    so no fold's round count has seen its own test days; the final fit reuses the count too.
    """

    def __init__(
        self, config: XGBoostConfig, features: FeatureConfig, holidays: pd.DataFrame | None
    ) -> None:
        self.config, self.features, self.holidays = config, features, holidays
        self.first: XGBForecaster | None = None

    def __call__(self) -> XGBForecaster:
        config = self.config
        if self.first is not None and config.early_stop_once and config.rounds is None:
            if not hasattr(self.first, "booster_"):
                raise RuntimeError("the first XGBoost model must be fitted before the next")
            rounds = self.first.booster_.num_boosted_rounds()
            config = config.model_copy(update={"rounds": rounds})
        model = XGBForecaster(config, self.features, holidays=self.holidays)
        if self.first is None:
            self.first = model
        return model


@dataclass(frozen=True)
class ModelFactories:
    """Fresh, unfitted forecasters for the backtest and the final fit."""

    xgboost: XGBoostFactory
    lstm: Callable[[], LSTMForecaster]

    def as_dict(self) -> dict[str, Callable[[], XGBForecaster | LSTMForecaster]]:
        return {"xgboost": self.xgboost, "lstm": self.lstm}


def model_factories(
    settings: Settings, holidays: pd.DataFrame | None, *, side_by_side: bool = False
) -> ModelFactories:
    """Return the two models' factories.

    ``side_by_side``: the two models will be fitted at the same time, so XGBoost leaves the
    LSTM its threads (``xgboost.nthread - lstm.num_threads``, at least 1).
    """
    xgb_config = settings.xgboost
    if side_by_side:
        threads = max(1, xgb_config.nthread - settings.lstm.num_threads)
        xgb_config = xgb_config.model_copy(update={"nthread": threads})
    return ModelFactories(
        XGBoostFactory(xgb_config, settings.features, holidays),
        partial(LSTMForecaster, settings.lstm),
    )


def side_by_side_models(settings: Settings, names: Collection[str]) -> tuple[str, ...]:
    """Return the models to fit side by side (``backtest.parallel_models``), or ``()``."""
    pair = tuple(name for name in ("xgboost", "lstm") if name in names)
    return pair if settings.backtest.parallel_models and len(pair) == 2 else ()


def _final_fit(
    factories: ModelFactories, sales: pd.DataFrame, *, side_by_side: bool
) -> tuple[XGBForecaster, LSTMForecaster]:
    """Fit both models on all data, in two threads when ``side_by_side``."""
    xgb, lstm = factories.xgboost(), factories.lstm()
    with ThreadPoolExecutor(2 if side_by_side else 1, thread_name_prefix="final-fit") as pool:
        xgb_fit, lstm_fit = pool.submit(xgb.fit, sales), pool.submit(lstm.fit, sales)
        xgb_fit.result()
        lstm_fit.result()
    return xgb, lstm


def serving_domain(sales: pd.DataFrame) -> dict[str, Any]:
    """Return what requests may ask for, recorded in the manifest (RELIABILITY promise 19)."""
    return {
        "stores": sorted(int(s) for s in sales[STORE].unique()),
        "families": sorted(str(f) for f in sales[FAMILY].unique()),
        "history_start": str(sales[DATE].min().date()),
        "history_end": str(sales[DATE].max().date()),
        "horizon": HORIZON,
        "onpromotion_max": int(sales[PROMO].max()),
    }


def train_bundle(
    dataset: BuiltDataset,
    settings: Settings,
    *,
    out_dir: Path,
    progress: bool = False,
    make_current: bool = True,
) -> TrainResult:
    """Backtest both models, learn the blend, refit on all data and publish a verified bundle."""
    sales = dataset.sales
    parallel = side_by_side_models(settings, ("xgboost", "lstm"))
    factories = model_factories(settings, dataset.holidays, side_by_side=bool(parallel))
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    cfg = settings.backtest
    result = run_backtest(
        sales,
        factories.as_dict(),
        folds=cfg.folds,
        horizon=cfg.horizon,
        step=cfg.step,
        progress=progress,
        parallel=parallel,
    )
    result, weights = add_hybrid(result)
    seconds["backtest"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    xgb, lstm = _final_fit(factories, sales, side_by_side=bool(parallel))
    hybrid = HybridForecaster(xgb, lstm, weights)
    seconds["final_fit"] = round(time.perf_counter() - started, 1)
    metadata = {
        **hybrid.metadata(),
        "model_type": "hybrid",
        "train_window": {
            "start": str(sales[DATE].min().date()),
            "end": str(sales[DATE].max().date()),
        },
        "feature_names": xgb.builder_.feature_names,
        "feature_set": settings.features.feature_set,
        "horizon": HORIZON,
        "domain": serving_domain(sales),
        "metrics": {"mean_rmsle": result.mean_rmsle()},
        "history_file": HISTORY_FILE,
        "train_seconds": seconds,
    }
    config = settings.model_dump(mode="json", include=set(CONFIG_SECTIONS))
    with BundleWriter(
        out_dir,
        fingerprint=dataset.fingerprint,
        metadata=metadata,
        config=config,
        metrics=result.to_dict(),
        make_current=make_current,
    ) as writer:
        hybrid.save(writer.directory)
        write_reference(writer.directory, sales)
        tail = sales[sales[DATE] > sales[DATE].max() - pd.Timedelta(days=HISTORY_DAYS)]
        write_parquet_atomic(writer.directory / HISTORY_FILE, tail.reset_index(drop=True))
    if writer.version is None or writer.path is None:
        raise ArtifactError(f"{out_dir}: the bundle was not published")
    logger.info("trained bundle version=%s seconds=%s", writer.version, seconds)
    return TrainResult(writer.version, writer.path, result, weights, seconds, hybrid)
