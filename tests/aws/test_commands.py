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
from retail_forecast.errors import ConfigError
from retail_forecast.pipeline.build_dataset import build_dataset, import_dataset

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
