from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from retail_forecast.artifacts import BundleWriter
from retail_forecast.cli import app
from retail_forecast.config import DataConfig
from retail_forecast.data_processing.dataset import build_dataset
from retail_forecast.data_processing.synthetic import SyntheticConfig, write_dataset
from retail_forecast.monitoring.prediction_log import PredictionLog
from retail_forecast.monitoring.reference import write_reference

METRICS = {
    "mean": {"xgboost": 0.4},
    "per_horizon_day": {str(h): {"xgboost": 0.4} for h in range(1, 17)},
}


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # no .env from the checkout
    monkeypatch.setenv("RF_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("RF_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    monkeypatch.setenv("RF_MONITORING__DB_PATH", str(tmp_path / "monitoring.sqlite"))
    return tmp_path


@pytest.fixture
def data_dir(env: Path) -> Path:
    out = env / "kaggle"
    write_dataset(out, SyntheticConfig(n_stores=4, n_days=200, seed=3))
    return out


def _publish_bundle(root: Path, data_dir: Path) -> str:
    """A bundle holding what monitoring reads: reference.parquet and metrics.json."""
    sales = build_dataset(data_dir, DataConfig(data_dir=str(data_dir))).sales
    with BundleWriter(root, fingerprint="ab" * 8, metrics=METRICS) as writer:
        write_reference(writer.directory, sales, days=90)
    assert writer.version is not None
    return writer.version


def _serve(db: Path, *, version: str, factor: float) -> pd.DataFrame:
    dates = pd.date_range("2017-08-01", periods=8)
    rows = pd.DataFrame(
        [(d, s, f, 1) for d in dates for s in (1, 2, 3) for f in ("A", "B", "C", "D", "E")],
        columns=["date", "store_nbr", "family", "horizon_day"],
    )
    truth = 10.0 + rows["store_nbr"] * 2.0
    assert PredictionLog(db).log_predictions(
        rows.assign(sales=truth * factor), model_version=version, model="xgboost"
    )
    return rows[["date", "store_nbr", "family"]].assign(sales=truth)


def test_drift_with_the_current_bundle_reference(data_dir: Path, env: Path) -> None:
    _publish_bundle(env / "artifacts", data_dir)
    result = CliRunner().invoke(app, ["monitor", "drift", "--data-dir", str(data_dir), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["status"] in {"ok", "drift"}
    assert {f["feature"] for f in report["features"]} >= {"lag_1", "onpromotion", "family"}
    assert report["window"][1] == "2017-08-15"
    table = CliRunner().invoke(app, ["monitor", "drift", "--data-dir", str(data_dir)])
    assert table.exit_code == 0
    assert "zero_share" in table.stdout


def test_drift_with_an_explicit_reference_detects_new_promotions(data_dir: Path, env: Path) -> None:
    sales = build_dataset(data_dir, DataConfig(data_dir=str(data_dir))).sales
    ref_dir = env / "ref"
    write_reference(ref_dir, sales.assign(onpromotion=0), days=60)
    result = CliRunner().invoke(
        app,
        [
            "monitor",
            "drift",
            "--data-dir",
            str(data_dir),
            "--reference",
            str(ref_dir / "reference.parquet"),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert "onpromotion" in report["drifted_features"]
    assert "promo_share" in report["drifted_checks"]


def test_ingest_then_check_exit_codes(env: Path, data_dir: Path) -> None:
    version = _publish_bundle(env / "artifacts", data_dir)
    db = env / "monitoring.sqlite"
    actuals = _serve(db, version=version, factor=1.05)
    csv = env / "actuals.csv"
    actuals.assign(date=actuals["date"].dt.strftime("%Y-%m-%d")).to_csv(csv, index=False)
    runner = CliRunner()
    ingest = runner.invoke(app, ["monitor", "ingest-actuals", "--file", str(csv), "--json"])
    assert ingest.exit_code == 0, ingest.output
    assert json.loads(ingest.stdout)["inserted"] == len(actuals)
    again = runner.invoke(app, ["monitor", "ingest-actuals", "--file", str(csv), "--json"])
    assert json.loads(again.stdout)["unchanged"] == len(actuals)
    healthy = runner.invoke(app, ["monitor", "check", "--json"])
    assert healthy.exit_code == 0, healthy.output
    assert json.loads(healthy.stdout)["status"] == "ok"
    _serve(db, version=version, factor=4.0)  # the same version starts to forecast 4x too much
    degraded = runner.invoke(app, ["monitor", "check", "--json"])
    assert degraded.exit_code == 1
    body = json.loads(degraded.stdout)
    assert body["alert"] is True
    assert body["model_version"] == version
    assert body["ratio"] > 1.2


def test_check_with_metrics_file_and_no_data_is_not_an_alert(env: Path) -> None:
    metrics = env / "metrics.json"
    metrics.write_text(json.dumps(METRICS))
    result = CliRunner().invoke(app, ["monitor", "check", "--metrics", str(metrics), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["status"] == "insufficient_data"


def test_report_writes_self_contained_html(env: Path, data_dir: Path) -> None:
    version = _publish_bundle(env / "artifacts", data_dir)
    db = env / "monitoring.sqlite"
    PredictionLog(db).ingest_actuals(_serve(db, version=version, factor=np.e))
    out = env / "report.html"
    result = CliRunner().invoke(
        app, ["monitor", "report", "--out", str(out), "--data-dir", str(data_dir)]
    )
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert page.count("<svg") >= 3
    assert "Drift" in page
    assert "degraded" in page
    assert "src=" not in page
    assert "<script" not in page
