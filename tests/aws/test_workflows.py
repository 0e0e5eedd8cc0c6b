"""`retail-forecast aws upload` end to end against moto, and the s3:// load/train seams."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from retail_forecast.artifacts import ModelBundle, resolve_current
from retail_forecast.aws.datasets import localize_data_dir
from retail_forecast.aws.s3 import localize_artifacts
from retail_forecast.cli import app
from retail_forecast.config import AwsConfig, DataConfig
from retail_forecast.data_processing.dataset import build_dataset
from retail_forecast.errors import ConfigError
from retail_forecast.pipeline.data_import import import_dataset

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, aws_config: AwsConfig) -> None:
    monkeypatch.setenv("RF_AWS__ENDPOINT_URL", str(aws_config.endpoint_url))
    monkeypatch.setenv("RF_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("RF_ARTIFACTS_DIR", str(tmp_path / "no-artifacts"))
    monkeypatch.setenv("RF_DATA__PROCESSED_DIR", str(tmp_path / "no-processed"))


def test_cli_upload_then_train_and_load_from_s3(
    cli_env: None,
    bucket: str,
    tmp_path: Path,
    tiny_kaggle: Any,
    aws_config: AwsConfig,
    bundle_factory: Callable[..., Path],
) -> None:
    config = DataConfig(processed_dir=tmp_path / "processed", quarantine_dir=tmp_path / "q")
    built = import_dataset(tiny_kaggle.write(), config)
    bundle = bundle_factory(tmp_path / "artifacts")

    sources = ["--artifacts", str(tmp_path / "artifacts"), "--data-dir", str(config.processed_dir)]
    result = CliRunner().invoke(
        app, ["aws", "upload", "--bucket", bucket, "--prefix", "p", *sources]
    )

    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["bundle"]["version"] == bundle.name
    assert out["bundle"]["uri"] == f"s3://{bucket}/p/models/{bundle.name}/model.tar.gz"
    assert {"train.csv", "test.csv", "stores.csv"} <= set(out["data"]["files"])

    local_data = localize_data_dir(f"s3://{bucket}/p", config=aws_config, cache_dir=tmp_path / "c")
    pd.testing.assert_frame_equal(build_dataset(local_data, DataConfig()).sales, built.sales)
    root = localize_artifacts(f"s3://{bucket}/p", config=aws_config, cache_dir=tmp_path / "m")
    assert ModelBundle.open(resolve_current(root)).version == bundle.name


def test_local_locations_pass_through(aws_config: AwsConfig, tmp_path: Path) -> None:
    assert localize_data_dir("data/x", config=aws_config, cache_dir=tmp_path) == "data/x"
    assert localize_artifacts(tmp_path, config=aws_config, cache_dir=tmp_path / "c") == tmp_path


def test_cli_upload_with_nothing_to_upload_fails(cli_env: None, bucket: str) -> None:
    result = CliRunner().invoke(app, ["aws", "upload", "--bucket", bucket])
    assert result.exit_code != 0
    assert isinstance(result.exception, ConfigError)
    assert "nothing to upload" in str(result.exception)


TINY_ENV = {
    "RF_XGBOOST__N_ESTIMATORS": "30",
    "RF_XGBOOST__NTHREAD": "1",
    "RF_XGBOOST__TRAIN_START": "2017-01-01",
    "RF_LSTM__EPOCHS": "1",
    "RF_LSTM__WINDOWS_PER_EPOCH": "256",
    "RF_LSTM__HIDDEN_SIZE": "8",
    "RF_LSTM__WINDOW": "28",
    "RF_LSTM__SCALER_DAYS": "60",
    "RF_BACKTEST__FOLDS": "2",
}


@pytest.mark.slow
def test_cli_train_from_s3_then_serve_side_loads_the_bundle_from_s3(
    cli_env: None,
    bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`data validate`/`train --data-dir s3://...` and `--artifacts s3://...` work end to end."""
    from retail_forecast.data_processing.synthetic import SyntheticConfig, write_dataset

    monkeypatch.chdir(tmp_path)  # the s3 cache lives under ./data/s3-cache
    for name, value in TINY_ENV.items():
        monkeypatch.setenv(name, value)
    raw = tmp_path / "raw"
    write_dataset(raw, SyntheticConfig(n_stores=2, n_families=3, n_days=200, seed=3))
    runner = CliRunner()
    up = runner.invoke(
        app, ["aws", "upload", "--bucket", bucket, "--prefix", "p", "--data-dir", str(raw)]
    )
    assert up.exit_code == 0, up.output
    uri = f"s3://{bucket}/p"

    checked = runner.invoke(app, ["data", "validate", "--data-dir", uri, "--json"])
    assert checked.exit_code == 0, checked.output
    assert json.loads(checked.stdout)["rows_quarantined"] == 0

    out = tmp_path / "artifacts"
    trained = runner.invoke(app, ["train", "--data-dir", uri, "--out", str(out)])
    assert trained.exit_code == 0, trained.output
    version = resolve_current(out).name

    up = runner.invoke(
        app, ["aws", "upload", "--bucket", bucket, "--prefix", "p", "--artifacts", str(out)]
    )
    assert up.exit_code == 0, up.output
    example = runner.invoke(app, ["example-request", "--artifacts", uri])
    assert example.exit_code == 0, example.output
    rows = json.loads(example.stdout)["rows"]
    assert len(rows) == 16
    cached = tmp_path / "data" / "s3-cache" / "artifacts"
    assert ModelBundle.open(resolve_current(cached)).version == version
