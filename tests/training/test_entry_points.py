"""SageMaker script-mode entry points with SM_* pointing at tmp dirs: loadable bundles out."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from retail_forecast.artifacts import ModelBundle
from retail_forecast.aws.deploy import build_deploy_plan
from retail_forecast.config import AwsConfig, DataConfig, LSTMConfig, XGBoostConfig
from retail_forecast.data_processing.dataset import build_dataset
from retail_forecast.data_processing.synthetic import SyntheticConfig, write_dataset
from retail_forecast.errors import ConfigError
from retail_forecast.inference.handler import model_fn
from retail_forecast.models.lstm import LSTMForecaster
from retail_forecast.models.xgboost import XGBForecaster
from retail_forecast.schema import DATE
from retail_forecast.training import train_lstm, train_xgboost
from retail_forecast.training.job import JobSettings, parse_args, write_failure

SAGEMAKER_ARGS = [
    "--sagemaker_program",
    '"train_xgboost.py"',
    "--sagemaker_submit_directory",
    '"s3://bucket/prefix/source/sourcedir.tar.gz"',
    "--sagemaker_container_log_level",
    "20",
]
XGB_ARGS = [
    "--n_estimators", "20", "--max_depth", "3", "--learning_rate", "0.3", "--nthread", "1",
    "--early_stopping_rounds", "5", "--refit_full", "false", "--train_start", '"2017-03-01"',
]  # fmt: skip
LSTM_ARGS = [
    "--window", "28", "--hidden_size", "8", "--epochs", "1", "--windows_per_epoch", "256",
    "--batch_size", "128", "--num_threads", "1", "--scaler_days", "60", "--device", '"cpu"',
    "--day_of_month", "true",
]  # fmt: skip
CONFIG = {"n_stores": 3, "n_families": 4, "seed": 5}


@pytest.fixture(scope="module")
def channels(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A train channel to 2017-07-30 and a validation channel with the 16 days after it."""
    root = tmp_path_factory.mktemp("channels")
    train, valid = root / "train", root / "validation"
    write_dataset(train, SyntheticConfig(n_days=200, end_date=dt.date(2017, 7, 30), **CONFIG))
    write_dataset(valid, SyntheticConfig(n_days=60, end_date=dt.date(2017, 8, 15), **CONFIG))
    return train, valid


@pytest.fixture
def sm_env(
    channels: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    (tmp_path / "output").mkdir()  # as /opt/ml/output exists in a job
    env = {
        "SM_MODEL_DIR": str(tmp_path / "model"),
        "SM_CHANNEL_TRAIN": str(channels[0]),
        "SM_CHANNEL_VALIDATION": str(channels[1]),
        "SM_OUTPUT_DATA_DIR": str(tmp_path / "output" / "data"),
        "RF_SM_FAILURE_FILE": str(tmp_path / "output" / "failure"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # no developer .env; relative defaults land here
    return env


def future_rows(data_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    built = build_dataset(data_dir, DataConfig())
    assert built.test is not None
    return built.sales, built.test.drop(columns="id")


def test_train_xgboost_publishes_a_loadable_verified_bundle(
    sm_env: dict[str, str], channels: tuple[Path, Path]
) -> None:
    assert train_xgboost.main([*XGB_ARGS, *SAGEMAKER_ARGS]) == 0
    model_dir = Path(sm_env["SM_MODEL_DIR"])
    bundle = ModelBundle.open_current(model_dir)
    assert {"xgboost/model.ubj", "preprocessor_xgboost.json", "history.parquet"} <= set(
        bundle.manifest.files
    )
    assert not bundle.has("lstm/weights.safetensors")
    meta = bundle.manifest.metadata
    assert meta["model_type"] == "xgboost"
    assert meta["domain"]["history_end"] == "2017-07-30"
    assert math.isfinite(meta["metrics"]["validation_rmsle"])
    assert bundle.read_json("config.json")["xgboost"]["n_estimators"] == 20
    assert bundle.read_json("config.json")["xgboost"]["train_start"] == "2017-03-01"
    sales, future = future_rows(channels[0])
    forecast = XGBForecaster.load(bundle.path).predict(sales, future)
    assert len(forecast) == len(future)
    assert (forecast["sales"] >= 0).all()
    hosted = model_fn(model_dir)  # what SageMaker hosting does with model.tar.gz
    assert hosted.booster is not None
    assert hosted.lstm is None
    assert json.loads((Path(sm_env["SM_OUTPUT_DATA_DIR"]) / "metrics.json").read_text())
    assert not Path(sm_env["RF_SM_FAILURE_FILE"]).exists()


def test_train_lstm_publishes_a_loadable_verified_bundle(
    sm_env: dict[str, str], channels: tuple[Path, Path]
) -> None:
    assert train_lstm.main([*LSTM_ARGS, *SAGEMAKER_ARGS]) == 0
    bundle = ModelBundle.open_current(Path(sm_env["SM_MODEL_DIR"]))
    assert {"lstm/weights.safetensors", "preprocessor_nn.json", "history.parquet"} <= set(
        bundle.manifest.files
    )
    assert bundle.manifest.metadata["model_type"] == "lstm"
    assert bundle.read_json("config.json")["lstm"]["hidden_size"] == 8
    sales, future = future_rows(channels[0])
    forecast = LSTMForecaster.load(bundle.path).predict(sales, future)
    assert len(forecast) == len(future)
    assert (forecast["sales"] >= 0).all()
    assert model_fn(Path(sm_env["SM_MODEL_DIR"])).lstm is not None


def test_missing_data_writes_the_failure_file_and_exits_1(
    sm_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SM_CHANNEL_TRAIN", str(tmp_path / "no-such-channel"))
    assert train_xgboost.main(XGB_ARGS) == 1
    reason = Path(sm_env["RF_SM_FAILURE_FILE"]).read_text()
    assert "no-such-channel" in reason
    assert not Path(sm_env["SM_MODEL_DIR"]).joinpath("current").exists()


def test_invalid_hyperparameter_fails_the_job(sm_env: dict[str, str]) -> None:
    assert train_lstm.main(["--hidden_size", "0"]) == 1
    reason = Path(sm_env["RF_SM_FAILURE_FILE"]).read_text()
    assert reason.startswith("ConfigError")
    assert "hidden_size" in reason


@pytest.mark.integration
def test_script_mode_runs_as_a_module_with_sm_env(sm_env: dict[str, str]) -> None:
    """What SageMaker's shim does: run the module as __main__ with the job's arguments."""
    env = {**os.environ, **sm_env}
    proc = subprocess.run(
        [sys.executable, "-m", "retail_forecast.training.train_xgboost", *XGB_ARGS, "--x", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    bundle = ModelBundle.open_current(Path(sm_env["SM_MODEL_DIR"]))
    assert pd.Timestamp(bundle.manifest.metadata["train_window"]["end"]) == pd.Timestamp(
        "2017-07-30"
    )
    assert DATE in bundle.read_parquet("history.parquet").columns


def test_hyperparameters_decode_sagemaker_encodings() -> None:
    base = XGBoostConfig()
    argv = [
        "--refit_full", "True", "--train_start", "null", "--max_depth", '"4"',
        "--learning_rate", "0.2", "--sagemaker_region", '"us-east-1"', "--data-dir", "d",
    ]  # fmt: skip
    config, known = parse_args(XGBoostConfig, base, argv)
    assert config.refit_full is True
    assert config.train_start is None
    assert config.max_depth == 4
    assert config.learning_rate == 0.2
    assert config.n_estimators == base.n_estimators  # untouched fields keep the settings value
    assert known.data_dir == "d"
    with pytest.raises(ConfigError, match="max_depth"):
        parse_args(XGBoostConfig, base, ["--max_depth", "deep"])


def test_local_defaults_and_no_failure_file_outside_sagemaker(tmp_path: Path) -> None:
    job = JobSettings.from_env("xgboost", environ={}, default_data_dir="data/default")
    assert job.model_dir == Path("artifacts/jobs/xgboost")
    assert job.train_dir == Path("data/default")
    assert job.validation_dir is None
    assert job.failure_file == Path("/opt/ml/output/failure")
    elsewhere = JobSettings.from_env(
        "lstm", environ={"RF_SM_FAILURE_FILE": str(tmp_path / "absent" / "failure")}
    )
    assert write_failure(elsewhere, "boom") is False
    assert not (tmp_path / "absent").exists()


def test_p34_a_job_trains_the_horizon_it_is_given_and_its_bundle_records_it(
    sm_env: dict[str, str], channels: tuple[Path, Path]
) -> None:
    """``--horizon`` as the deploy plan sends it (JSON-encoded): the LSTM's head is 28 long."""
    assert train_lstm.main([*LSTM_ARGS, "--horizon", '"28"', *SAGEMAKER_ARGS]) == 0
    bundle = ModelBundle.open_current(Path(sm_env["SM_MODEL_DIR"]))
    assert bundle.manifest.metadata["horizon"] == 28
    assert bundle.manifest.metadata["domain"]["horizon"] == 28
    model = LSTMForecaster.load(bundle.path)
    assert model.horizon == 28
    assert model.net_.horizon_emb.num_embeddings == 28
    plan = build_deploy_plan(
        aws=AwsConfig(bucket="rf-bucket", role_arn="arn:aws:iam::123456789012:role/rf"),
        xgboost=XGBoostConfig(),
        lstm=LSTMConfig(),
        horizon=28,
        source_sha256="ab" * 32,
        stamp="20240101t000000",
    )
    jobs = [r.params for r in plan.requests if r.operation == "CreateTrainingJob"]
    assert [job["HyperParameters"]["horizon"] for job in jobs] == ["28", "28"]


def test_a_bad_horizon_fails_the_job_naming_it(sm_env: dict[str, str]) -> None:
    assert train_xgboost.main([*XGB_ARGS, "--horizon", "0"]) == 1
    assert "--horizon" in Path(sm_env["RF_SM_FAILURE_FILE"]).read_text()
