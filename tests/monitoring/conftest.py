"""Synthetic canonical panels for the monitoring tests."""

from __future__ import annotations

import pandas as pd
import pytest

from retail_forecast.config import MonitoringConfig
from retail_forecast.data_processing.clean import complete_panel
from retail_forecast.data_processing.synthetic import SyntheticConfig, generate_frames
from retail_forecast.monitoring.reference import build_reference, window_features

REF_START, REF_END = pd.Timestamp("2017-03-01"), pd.Timestamp("2017-05-31")


def canonical_sales(*, n_stores: int = 8, n_days: int = 300, seed: int = 0) -> pd.DataFrame:
    """The synthetic generator's train rows as a canonical frame (ends 2017-08-15)."""
    train = generate_frames(SyntheticConfig(n_stores=n_stores, n_days=n_days, seed=seed))["train"]
    train["date"] = pd.to_datetime(train["date"])
    train["family"] = pd.Categorical(train["family"], categories=sorted(train["family"].unique()))
    return complete_panel(train)[0]


@pytest.fixture(scope="session")
def sales() -> pd.DataFrame:
    return canonical_sales()


@pytest.fixture(scope="session")
def reference(sales: pd.DataFrame) -> pd.DataFrame:
    """Reference profile of 2017-03-01..05-31 (with warm-up days for the lags)."""
    return build_reference(window_features(sales, start=REF_START, end=REF_END))


@pytest.fixture
def config() -> MonitoringConfig:
    return MonitoringConfig()
