"""build_dataset: reads, validates and cleans, and writes nothing; BuiltDataset's tables."""

from __future__ import annotations

from pathlib import Path

from retail_forecast.config import DataConfig
from retail_forecast.data_processing.dataset import build_dataset


def test_build_dataset_writes_nothing(tiny_kaggle, tmp_path: Path) -> None:
    data_dir = tiny_kaggle.write()
    before = sorted(tmp_path.rglob("*"))
    config = DataConfig(
        processed_dir=tmp_path / "processed", quarantine_dir=tmp_path / "quarantine"
    )
    built = build_dataset(data_dir, config)
    assert sorted(tmp_path.rglob("*")) == before
    assert sorted(built.tables()) == [
        "holidays",
        "oil",
        "sales",
        "stores",
        "test",
        "transactions",
    ]
