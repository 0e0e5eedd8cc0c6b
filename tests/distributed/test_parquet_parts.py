"""Whole-series Parquet parts (data generate --items) read lazily by the dask engine."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pandas as pd
import pytest

from retail_forecast.closed_days import YearlyClosures
from retail_forecast.config import DataConfig, FeatureConfig, XGBoostConfig
from retail_forecast.data_processing.dataset import build_dataset
from retail_forecast.data_processing.synthetic import SyntheticConfig, write_dataset
from retail_forecast.distributed.cluster import DaskEngine
from retail_forecast.distributed.dask_xgboost import (
    DaskXGBForecaster,
    _partition_rows,
    _rows_meta,
)
from retail_forecast.distributed.parquet_input import (
    partition_keys,
    read_series_parts,
    series_parts,
)
from retail_forecast.distributed.partitions import partitioned_frame
from retail_forecast.errors import DataValidationError
from retail_forecast.schema import FAMILY, STORE

CONFIG = XGBoostConfig(rounds=20, subsample=1.0, colsample_bytree=1.0, nthread=1)
# 2 parts; two generated 25 Decembers (the chain closes then) to learn as a yearly closure
ITEMS = SyntheticConfig(
    n_stores=3, items_per_store=40, n_days=400, end_date=dt.date(2017, 1, 10), seed=2
)


@pytest.fixture(scope="module")
def parts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out: Path = tmp_path_factory.mktemp("items")
    write_dataset(out, ITEMS)
    return out


def test_generate_items_writes_whole_series_parts(parts_dir: Path) -> None:
    parts = series_parts(parts_dir)
    assert parts is not None
    assert [p.name for p in parts] == [
        "part-00000.parquet",
        "part-00001.parquet",
    ]
    keys = [pd.read_parquet(p, columns=[STORE, FAMILY]).drop_duplicates() for p in parts]
    assert [len(k) for k in keys] == [3 * 33, 3 * 7]  # 40 items = a block of 33 + 7
    both = pd.concat(keys)
    assert not both.duplicated().any()
    assert len(both) == 3 * 40


def test_parts_every_series_in_exactly_one_partition(engine: DaskEngine, parts_dir: Path) -> None:
    parts = series_parts(parts_dir)
    assert parts is not None
    frame = read_series_parts(parts, parts_dir, DataConfig(data_dir=str(parts_dir)), horizon=16)
    assert frame.npartitions == len(parts)
    keys = partition_keys(frame)
    assert len(keys) == 3 * 40
    assert not keys.duplicated([STORE, FAMILY]).any()
    assert sorted(keys["_partition"].unique()) == [0, 1]


def test_parquet_path_gives_the_pandas_paths_training_rows(
    engine: DaskEngine, parts_dir: Path
) -> None:
    config = DataConfig(data_dir=str(parts_dir))
    built = build_dataset(parts_dir, config, horizon=16)  # the driver's pandas path
    model = DaskXGBForecaster(CONFIG, FeatureConfig(), horizon=16, engine=engine)
    builder = model.feature_builder(built.sales)
    parts = series_parts(parts_dir)
    assert parts is not None
    lazy = read_series_parts(parts, parts_dir, config, horizon=16)
    eager = partitioned_frame(built.sales, 3)
    args = (model.local_model(), builder)
    rows = [
        f.map_partitions(_partition_rows, *args, meta=_rows_meta(builder), align_dataframes=False)
        .compute()
        .sort_values(list(_rows_meta(builder).columns))
        .reset_index(drop=True)
        for f in (eager, lazy)
    ]
    assert len(rows[0]) > 20_000
    pd.testing.assert_frame_equal(rows[0], rows[1])
    model.fit_parts(lazy)  # and the fit from parts predicts as the local recursion does
    # the yearly closures learned across the workers' parts are the whole frame's
    assert builder.yearly_closures == YearlyClosures(((12, 25),))
    assert model.builder_.yearly_closures == builder.yearly_closures
    future = built.test.drop(columns=["is_closed"], errors="ignore").astype({FAMILY: str})
    got = model.predict_parts(lazy, future).sort_values("id")["sales"].to_numpy()
    expected = model.local_model().predict(built.sales, built.test)["sales"].to_numpy()
    assert (got == expected).all()


def test_parts_cut_across_series_fail_clearly(engine: DaskEngine, tmp_path: Path) -> None:
    write_dataset(tmp_path, ITEMS)
    parts_dir = tmp_path / "train_parts"
    first = pd.read_parquet(parts_dir / "part-00000.parquet")
    cut = sorted(first["date"].unique())[150]  # Kaggle text dates sort as days
    first[first["date"] >= cut].to_parquet(parts_dir / "part-00001.parquet", index=False)
    first[first["date"] < cut].to_parquet(parts_dir / "part-00000.parquet", index=False)
    parts = series_parts(tmp_path)
    assert parts is not None
    frame = read_series_parts(parts, tmp_path, DataConfig(data_dir=str(tmp_path)), horizon=16)
    model = DaskXGBForecaster(CONFIG, FeatureConfig(), horizon=16, engine=engine)
    with pytest.raises(DataValidationError, match="more than one part"):
        model.fit_parts(frame)


def test_date_cut_parts_without_marker_take_the_local_reading(tmp_path: Path) -> None:
    write_dataset(tmp_path, ITEMS)
    (tmp_path / "train_parts" / "_series_blocks.json").unlink()
    assert series_parts(tmp_path) is None  # e.g. Favorita's df_train_part_* (cut by date)


def test_data_generate_items_cli(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from retail_forecast.cli import app

    out = tmp_path / "d"
    args = ["data", "generate", "--out", str(out), "--stores", "2", "--items", "5", "--days", "60"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    # 2 stores x 5 items x 60 days, counted from the parts' marker
    assert re.search(r"train rows\s+\S\s+600\s", result.output), result.output
    assert series_parts(out) == [out / "train_parts" / "part-00000.parquet"]
    bad = CliRunner().invoke(app, [*args[:-6], "--items", "-1"])
    assert bad.exit_code != 0
    assert "--items" in bad.output
