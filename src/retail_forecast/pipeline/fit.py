"""build_dataset -> backtest -> final fit of both models -> blend -> ModelBundle."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from retail_forecast.artifacts import BundleWriter
from retail_forecast.config import Settings, XGBoostConfig
from retail_forecast.errors import ArtifactError
from retail_forecast.models.blend import BlendWeights
from retail_forecast.models.hybrid import HybridForecaster
from retail_forecast.models.lstm import LSTMForecaster
from retail_forecast.models.xgboost import XGBForecaster
from retail_forecast.monitoring.reference import write_reference
from retail_forecast.pipeline.build_dataset import BuiltDataset
from retail_forecast.schema import DATE, FAMILY, HORIZON, PROMO, STORE
from retail_forecast.training.backtest import BacktestResult, run_backtest
from retail_forecast.training.hybrid import add_hybrid
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


def model_factories(
    settings: Settings, holidays: pd.DataFrame | None, *, side_by_side: bool = False
) -> dict[str, Callable[[], XGBForecaster | LSTMForecaster]]:
    """Return fresh, unfitted forecasters for the backtest and the final fit.

    ``side_by_side``: the two models will be fitted at the same time, so XGBoost leaves the
    LSTM its threads (``xgboost.nthread - lstm.num_threads``, at least 1).
    """
    xgb_config = _xgboost_config(settings, side_by_side=side_by_side)
    return {
        "xgboost": lambda: XGBForecaster(xgb_config, settings.features, holidays=holidays),
        "lstm": lambda: LSTMForecaster(settings.lstm),
    }


def side_by_side_models(settings: Settings, names: Collection[str]) -> tuple[str, ...]:
    """Return the models to fit side by side (``backtest.parallel_models``), or ``()``."""
    pair = tuple(name for name in ("xgboost", "lstm") if name in names)
    return pair if settings.backtest.parallel_models and len(pair) == 2 else ()


def _xgboost_config(settings: Settings, *, side_by_side: bool) -> XGBoostConfig:
    if not side_by_side:
        return settings.xgboost
    threads = max(1, settings.xgboost.nthread - settings.lstm.num_threads)
    return settings.xgboost.model_copy(update={"nthread": threads})


def _final_fit(
    settings: Settings, holidays: pd.DataFrame | None, sales: pd.DataFrame, *, side_by_side: bool
) -> tuple[XGBForecaster, LSTMForecaster]:
    """Fit both models on all data, in two threads when ``side_by_side``."""
    xgb_config = _xgboost_config(settings, side_by_side=side_by_side)
    xgb = XGBForecaster(xgb_config, settings.features, holidays=holidays)
    lstm = LSTMForecaster(settings.lstm)
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
        factories,
        folds=cfg.folds,
        horizon=cfg.horizon,
        step=cfg.step,
        progress=progress,
        parallel=parallel,
    )
    result, weights = add_hybrid(result)
    seconds["backtest"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    xgb, lstm = _final_fit(settings, dataset.holidays, sales, side_by_side=bool(parallel))
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
