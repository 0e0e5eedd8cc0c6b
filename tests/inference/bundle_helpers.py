"""Build a REAL tiny bundle (synthetic data -> build_dataset -> train_bundle) for serving tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from retail_forecast.config import (
    ApiConfig,
    BacktestConfig,
    DataConfig,
    ForecastConfig,
    LSTMConfig,
    Settings,
    XGBoostConfig,
)
from retail_forecast.data_processing.dataset import BuiltDataset, build_dataset
from retail_forecast.data_processing.synthetic import SyntheticConfig, write_dataset
from retail_forecast.pipeline.fit import train_bundle

N_STORES, N_FAMILIES = 3, 4


@dataclass(frozen=True)
class TinyBundle:
    """A published bundle under ``artifacts`` trained on the Kaggle-layout ``data_dir``."""

    root: Path
    data_dir: Path
    artifacts: Path
    version: str
    dataset: BuiltDataset

    def settings(self, history_dir: Path, *, artifacts: Path | None = None, **api: Any) -> Settings:
        return Settings(  # type: ignore[call-arg]
            _env_file=None,
            artifacts_dir=artifacts or self.artifacts,
            log_dir=self.root / "logs",
            data=DataConfig(
                processed_dir=self.root / "processed", quarantine_dir=self.root / "quarantine"
            ),
            api=ApiConfig(history_dir=history_dir, **api),
        )

    @property
    def sales(self) -> pd.DataFrame:
        return self.dataset.sales

    @property
    def test(self) -> pd.DataFrame:
        assert self.dataset.test is not None
        return self.dataset.test


def tiny_settings(root: Path, *, horizon: int = 16) -> Settings:
    """Few XGBoost rounds, one short LSTM epoch, two backtest folds: trains in ~2 s."""
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        log_dir=root / "logs",
        data=DataConfig(processed_dir=root / "processed", quarantine_dir=root / "quarantine"),
        xgboost=XGBoostConfig(
            n_estimators=30, learning_rate=0.3, max_depth=4, early_stopping_rounds=5, nthread=1
        ),
        lstm=LSTMConfig(
            window=28,
            hidden_size=8,
            epochs=1,
            windows_per_epoch=256,
            batch_size=128,
            num_threads=1,
            scaler_days=60,
            device="cpu",
        ),
        forecast=ForecastConfig(horizon=horizon),
        backtest=BacktestConfig(folds=2),
    )


def build_tiny_bundle(root: Path, *, horizon: int = 16) -> TinyBundle:
    """A bundle of ``horizon`` days; test.csv covers the same days after the train data."""
    data_dir = root / "data"
    write_dataset(
        data_dir,
        SyntheticConfig(
            n_stores=N_STORES, n_families=N_FAMILIES, n_days=200, seed=3, horizon=horizon
        ),
    )
    settings = tiny_settings(root, horizon=horizon)
    dataset = build_dataset(data_dir, settings.data, horizon=horizon)
    result = train_bundle(dataset, settings, out_dir=root / "artifacts")
    return TinyBundle(root, data_dir, root / "artifacts", result.version, dataset)
