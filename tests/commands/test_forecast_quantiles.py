"""`retail-forecast train` writes a verified quantile calibration; `forecast --quantiles` uses it.

Real subprocesses of the CLI on a small generated data set (closed Sundays, dead series), real
bundle files in a temporary directory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retail_forecast.artifacts import ModelBundle
from retail_forecast.data_processing.synthetic import SyntheticConfig, write_dataset
from retail_forecast.errors import ArtifactError
from retail_forecast.inference.local import LocalPredictor
from retail_forecast.models.quantiles import CALIBRATION_FILE, QuantileCalibration

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

TINY_ENV = {
    "RF_XGBOOST__N_ESTIMATORS": "30",
    "RF_XGBOOST__EARLY_STOPPING_ROUNDS": "5",
    "RF_XGBOOST__NTHREAD": "1",
    "RF_LSTM__EPOCHS": "1",
    "RF_LSTM__WINDOWS_PER_EPOCH": "256",
    "RF_LSTM__BATCH_SIZE": "128",
    "RF_LSTM__HIDDEN_SIZE": "8",
    "RF_LSTM__WINDOW": "28",
    "RF_LSTM__SCALER_DAYS": "60",
    "RF_LSTM__NUM_THREADS": "1",
    "RF_BACKTEST__FOLDS": "3",
}


def _cli(root: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, **TINY_ENV, "RF_LOG_DIR": str(root / "logs")}
    env["RF_DATA__PROCESSED_DIR"] = str(root / "processed")
    env["RF_DATA__QUARANTINE_DIR"] = str(root / "quarantine")
    command = [sys.executable, "-m", "retail_forecast.cli", *args]
    return subprocess.run(command, cwd=root, env=env, capture_output=True, timeout=280)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("quantile-cli")
    data = root / "data"
    config = SyntheticConfig(
        n_stores=3, n_families=4, n_days=200, seed=5, closed_sundays=True, dead_series_share=0.2
    )
    write_dataset(data, config)
    done = _cli(root, "train", "--data-dir", str(data), "--out", str(root / "artifacts"))
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    assert "held-out quantile coverage" in done.stdout.decode()  # the coverage table is printed
    return root, data


def test_train_writes_a_listed_calibration_and_a_quantile_report(
    trained: tuple[Path, Path],
) -> None:
    root, _ = trained
    bundle = ModelBundle.open_current(root / "artifacts")
    assert bundle.has(CALIBRATION_FILE)  # in the manifest: sha256 and size recorded
    metrics = bundle.read_json("metrics.json")
    report = metrics["quantiles"]
    assert report["column"] in {"hybrid", "xgboost", "lstm"}
    assert len(report["per_fold"]) == 3
    for fold in report["per_fold"].values():
        assert set(fold["coverage"]) == {"0.5", "0.8", "0.95"}
    assert report["wql"] is not None


def test_bundle_round_trip_gives_identical_quantiles(trained: tuple[Path, Path]) -> None:
    root, _ = trained
    bundle = ModelBundle.open_current(root / "artifacts")
    predictor = LocalPredictor.from_bundle(bundle)
    assert predictor.calibration is not None
    from_file = QuantileCalibration.load(bundle.path)
    rng = np.random.default_rng(0)
    point = np.expm1(rng.uniform(0, 6, 300))
    day = rng.integers(1, predictor.calibration.horizon + 1, 300)
    levels = (0.005, 0.1, 0.5, 0.9, 0.995)
    assert np.array_equal(
        predictor.calibration.quantiles(point, day, levels), from_file.quantiles(point, day, levels)
    )
    assert np.array_equal(predictor.calibration.offsets, from_file.offsets)


def test_a_tampered_calibration_fails_bundle_verification(
    trained: tuple[Path, Path], tmp_path: Path
) -> None:
    root, _ = trained
    source = ModelBundle.open_current(root / "artifacts").path
    copy = tmp_path / source.name
    shutil.copytree(source, copy)
    path = copy / CALIBRATION_FILE
    path.chmod(0o600)
    data = json.loads(path.read_text())
    data["offsets"][0][0][-1] += 1.0  # a wider top: still a valid calibration, not the trained one
    path.write_text(json.dumps(data))
    with pytest.raises(ArtifactError, match="calibration"):
        ModelBundle.open(copy)


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, float_precision="round_trip")


def test_forecast_writes_quantile_columns_and_stays_point_only_without_them(
    trained: tuple[Path, Path],
) -> None:
    root, data = trained
    plain, banded = root / "plain.csv", root / "banded.csv"
    base = ("forecast", "--data-dir", str(data), "--artifacts", str(root / "artifacts"))
    done = _cli(root, *base, "--out", str(plain))
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    done = _cli(root, *base, "--out", str(banded), "--quantiles", "0.1,0.5,0.9")
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    frame = _read(banded)
    # closed Sundays are declared (an open column): a closed column follows id,sales
    assert list(frame.columns) == ["id", "sales", "closed", "q0.1", "q0.5", "q0.9"]
    assert list(_read(plain).columns) == ["id", "sales", "closed"]
    # the point-only file is the banded file's first three columns, byte for byte
    lines = banded.read_text().splitlines()
    assert plain.read_text() == "".join(",".join(x.split(",")[:3]) + "\n" for x in lines)
    q = frame[["q0.1", "q0.5", "q0.9"]].to_numpy()
    assert (q >= 0).all()
    assert (np.diff(q, axis=1) >= 0).all()
    test = pd.read_csv(data / "test.csv")
    closed = frame["id"].isin(test.loc[test["open"] == 0, "id"]).to_numpy()
    zero = (frame["sales"] == 0).to_numpy()
    assert closed.any()  # closed Sundays ...
    assert (frame["closed"].to_numpy() == closed.astype(int)).all()
    assert (zero & ~closed).any()  # ... and zero-rule series
    assert (q[zero] == 0).all()  # closed days and the zero rule: 0 at every level
    assert (q[~zero, 1] > 0).all()


def test_forecast_refuses_bad_levels_naming_the_position(trained: tuple[Path, Path]) -> None:
    root, data = trained
    done = _cli(
        root, "forecast", "--data-dir", str(data), "--artifacts", str(root / "artifacts"),
        "--out", str(root / "bad.csv"), "--quantiles", "0.1,1.5",
    )  # fmt: skip
    assert done.returncode == 1
    assert "quantiles[1]" in done.stderr.decode()
    assert not (root / "bad.csv").exists()


def test_a_bundle_without_a_calibration_serves_points_and_refuses_quantiles(
    trained: tuple[Path, Path], tmp_path: Path
) -> None:
    root, data = trained
    source = ModelBundle.open_current(root / "artifacts").path
    old = tmp_path / "artifacts"
    copy = old / source.name
    shutil.copytree(source, copy)
    (copy / CALIBRATION_FILE).unlink()  # a bundle written before quantiles existed
    manifest_path = copy / "manifest.json"
    manifest_path.chmod(0o600)
    manifest = json.loads(manifest_path.read_text())
    del manifest["files"][CALIBRATION_FILE]
    manifest_path.write_text(json.dumps(manifest))
    (old / "current").write_text(source.name + "\n")
    assert LocalPredictor.from_bundle(ModelBundle.open(copy)).calibration is None
    base = ("forecast", "--data-dir", str(data), "--artifacts", str(old))
    assert _cli(root, *base, "--out", str(tmp_path / "plain.csv")).returncode == 0
    done = _cli(root, *base, "--out", str(tmp_path / "q.csv"), "--quantiles", "0.5")
    assert done.returncode == 2
    assert "no quantile calibration" in done.stderr.decode()
