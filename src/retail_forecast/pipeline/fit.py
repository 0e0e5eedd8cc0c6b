"""Train the served bundle: backtest -> blend weights, quantile calibration -> final fit -> publish.

The quantile calibration (models/quantiles.py) uses the served column's residuals on every
backtest fold; metrics.json's ``quantiles`` section scores it held out (fold k calibrated on
the other folds, training/quantile_scores.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from retail_forecast.artifacts import BundleWriter
from retail_forecast.bundle_contents import serving_metadata, write_history_tail
from retail_forecast.config import Settings
from retail_forecast.data_processing.dataset import BuiltDataset
from retail_forecast.errors import ArtifactError
from retail_forecast.models.blend import BlendWeights
from retail_forecast.models.hybrid import HybridForecaster
from retail_forecast.models.lstm import LSTMForecaster
from retail_forecast.models.quantiles import QuantileCalibration
from retail_forecast.models.xgboost import XGBForecaster
from retail_forecast.monitoring.reference import write_reference
from retail_forecast.training.backtest import BacktestResult, run_backtest
from retail_forecast.training.factories import (
    ModelFactories,
    model_factories,
    side_by_side_models,
)
from retail_forecast.training.heldout_blend import add_hybrid
from retail_forecast.training.quantile_scores import calibrate, heldout_report, served_column

logger = logging.getLogger(__name__)

CONFIG_SECTIONS = ("features", "xgboost", "lstm", "forecast", "backtest")


@dataclass(frozen=True)
class TrainResult:
    """What ``train`` produced: the published bundle and the backtest behind its weights."""

    version: str
    path: Path
    backtest: BacktestResult
    weights: BlendWeights
    seconds: dict[str, float]
    forecaster: HybridForecaster
    calibration: QuantileCalibration | None = None
    quantile_report: dict[str, Any] | None = None


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


def train_bundle(
    dataset: BuiltDataset,
    settings: Settings,
    *,
    out_dir: Path,
    progress: bool = False,
    make_current: bool = True,
    engine: Callable[[ModelFactories], ModelFactories] | None = None,
) -> TrainResult:
    """Backtest both models, learn the blend, refit on all data and publish a verified bundle.

    ``engine`` swaps the models' factories (``--engine dask``: XGBoost on a cluster).
    """
    sales = dataset.sales
    parallel = side_by_side_models(settings, ("xgboost", "lstm"))
    factories = model_factories(settings, dataset.holidays, side_by_side=bool(parallel))
    if engine is not None:
        factories = engine(factories)
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    cfg = settings.backtest
    result = run_backtest(
        sales,
        factories.as_dict(),
        folds=cfg.folds,
        horizon=settings.forecast.horizon,
        step=cfg.step,
        progress=progress,
        parallel=parallel,
    )
    result, weights = add_hybrid(result)
    # the served column's residuals: all folds for the bundle, held out for the report
    column = served_column(weights)
    calibration = calibrate(result, column)
    quantile_report = heldout_report(result, column)
    seconds["backtest"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    xgb, lstm = _final_fit(factories, sales, side_by_side=bool(parallel))
    hybrid = HybridForecaster(xgb, lstm, weights)
    seconds["final_fit"] = round(time.perf_counter() - started, 1)
    metadata = {
        **hybrid.metadata(),
        **serving_metadata(sales, hybrid.horizon),
        "model_type": "hybrid",
        "feature_names": xgb.builder_.feature_names,
        "features": xgb.builder_.spec.to_dict(),
        "metrics": {"mean_rmsle": result.mean_rmsle()},
        "train_seconds": seconds,
    }
    config = settings.model_dump(mode="json", include=set(CONFIG_SECTIONS))
    with BundleWriter(
        out_dir,
        fingerprint=dataset.fingerprint,
        metadata=metadata,
        config=config,
        metrics={**result.to_dict(), "quantiles": quantile_report},
        make_current=make_current,
    ) as writer:
        hybrid.save(writer.directory)
        calibration.save(writer.directory)  # listed and hashed by the manifest like the rest
        write_reference(writer.directory, sales)
        write_history_tail(writer.directory, sales)
    if writer.version is None or writer.path is None:
        raise ArtifactError(f"{out_dir}: the bundle was not published")
    logger.info("trained bundle version=%s seconds=%s", writer.version, seconds)
    return TrainResult(
        writer.version, writer.path, result, weights, seconds, hybrid, calibration, quantile_report
    )
