"""A real local Dask cluster (2 worker processes, the scheduler in its own) on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from retail_forecast.config import DataConfig
from retail_forecast.data_processing.dataset import BuiltDataset, build_dataset
from retail_forecast.data_processing.synthetic import SyntheticConfig, write_dataset
from retail_forecast.distributed.cluster import DaskEngine, open_engine


@pytest.fixture(scope="package")
def engine() -> Iterator[DaskEngine]:
    with open_engine("dask", n_workers=2) as started:
        assert started is not None
        yield started


@pytest.fixture(scope="package")
def panel(tmp_path_factory: pytest.TempPathFactory) -> BuiltDataset:
    raw: Path = tmp_path_factory.mktemp("raw")
    write_dataset(raw, SyntheticConfig(n_stores=4, n_families=6, n_days=400, seed=1))
    return build_dataset(raw, DataConfig(data_dir=str(raw)), horizon=16)
