"""Every generated panel shape through the real CLI, with zero code or setting changes.

For each shape of ``retail-forecast data generate`` (closed Sundays, regional holidays, gaps,
one family, 2019-2022 dates, a 28-day horizon): ``train`` (its 4-fold backtest included),
``forecast`` of test.csv and ``serve`` under a real uvicorn on 127.0.0.1, each a subprocess
as a user runs it, on real files. The data set's own ``retail_forecast.toml`` (written by the
generator: its horizon, its shock period) is the only configuration.

What is checked (issue 15): the model the bundle serves beats the seasonal naive by at least
20 % mean RMSLE in the backtest (on the open days); the LSTM's own backtest beats it too; the
batch forecast answers 0 on every closed day of test.csv; the API answers the same numbers as
the batch forecast for one series' whole window, a closed day (sent with ``open: 0``) as 0 with
``closed: true``. The panels are small (4 stores x 6 families, 2 years): a fit takes seconds.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "api"))

from serve_process import ServeProcess

from retail_forecast.config import settings_for
from retail_forecast.data_processing.dataset import build_dataset
from retail_forecast.schema import DATE, FAMILY, IS_CLOSED, PROMO, STORE
from retail_forecast.settings_profile import profile_next_to

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(600)]

SHAPES = ("closed-sundays", "regional", "gaps", "one-family", "recent-years", "long-horizon")
MIN_GAIN = 0.20  # the bar: 20 % lower mean RMSLE than the seasonal naive
CLI = [sys.executable, "-m", "retail_forecast.cli"]


@dataclass(frozen=True)
class Trained:
    shape: str
    data: Path
    artifacts: Path
    bundle: Path
    submission: pd.DataFrame
    test: pd.DataFrame  # test.csv as the product reads it: is_closed where the data closes


def _run(args: list[str], cwd: Path) -> None:
    # no .env and no RF_* variable of the caller's: the defaults and the data set's own file
    env = {k: v for k, v in os.environ.items() if not k.startswith("RF_")}
    env["RF_LOG_DIR"] = str(cwd / "logs")
    done = subprocess.run(
        [*CLI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=540, check=False
    )
    assert done.returncode == 0, f"{args[:2]} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"


@pytest.fixture(scope="module", params=SHAPES)
def trained(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    shape = str(request.param)
    root = tmp_path_factory.mktemp(shape)
    data, artifacts = root / "data", root / "artifacts"
    size = ["--stores", "4"] + ([] if shape == "one-family" else ["--families", "6"])
    _run(["data", "generate", "--shape", shape, *size, "--out", str(data)], root)
    _run(["train", "--data-dir", str(data), "--out", str(artifacts)], root)
    out = ["--out", str(root / "submission.csv")]
    _run(["forecast", "--data-dir", str(data), "--artifacts", str(artifacts), *out], root)
    bundle = artifacts / (artifacts / "current").read_text().strip()  # the published version
    settings = settings_for(profile_next_to(data), _env_file=None)
    test = build_dataset(data, settings.data, horizon=settings.forecast.horizon).test
    assert test is not None
    return Trained(shape, data, artifacts, bundle, pd.read_csv(root / "submission.csv"), test)


def _served_column(bundle: Path) -> str:
    """The backtest column of the model the bundle answers with (the blend or one model)."""
    weights = json.loads((bundle / "manifest.json").read_text())["metadata"]["blend_weights"]
    if not weights.get("per_family"):
        if weights["global_weight"] == 1.0:
            return str(weights["first"])
        if weights["global_weight"] == 0.0:
            return str(weights["second"])
    return "hybrid"


def test_served_model_and_lstm_beat_the_seasonal_naive_by_20_percent(trained: Trained) -> None:
    mean = json.loads((trained.bundle / "metrics.json").read_text())["mean"]
    naive = mean["seasonal_naive"]
    served = _served_column(trained.bundle)
    gain = 1 - mean[served] / naive
    assert gain >= MIN_GAIN, f"{trained.shape}: {served} {mean[served]:.4f} vs {naive:.4f}"
    assert mean["lstm"] < naive, f"{trained.shape}: lstm {mean['lstm']:.4f} vs {naive:.4f}"


def test_batch_forecast_covers_test_csv_and_answers_closed_days_0(trained: Trained) -> None:
    submission, test = trained.submission, trained.test
    declared = IS_CLOSED in test  # the data closes days in the window: a closed column
    assert list(submission.columns) == ["id", "sales", *(["closed"] if declared else [])]
    assert len(submission) == len(test)
    by_id = submission.set_index("id").reindex(test["id"].to_numpy())
    sales = by_id["sales"].to_numpy()
    assert np.isfinite(sales).all()
    assert (sales >= 0).all()
    closed = _closed(test)
    if trained.shape == "closed-sundays":  # regional: the window may have no closure
        assert closed.any(), "the shape closes days in the forecast window"
    if declared:
        assert (by_id["closed"].to_numpy() == closed.astype(int)).all()
    assert (sales[closed] == 0).all()
    assert (sales[~closed] > 0).any()


def _closed(test: pd.DataFrame) -> np.ndarray[Any, np.dtype[np.bool_]]:
    if IS_CLOSED not in test:
        return np.zeros(len(test), dtype=bool)
    return test[IS_CLOSED].to_numpy(dtype=bool)


def test_api_answers_the_batch_forecast_and_flags_closed_days(
    trained: Trained, tmp_path: Path
) -> None:
    test = trained.test.assign(closed=_closed(trained.test))
    # the series with the most closed days in the window (any series when none is closed)
    key = test.groupby([STORE, FAMILY], observed=True)["closed"].sum().idxmax()
    rows = test[(test[STORE] == key[0]) & (test[FAMILY] == key[1])].sort_values(DATE)
    body = {
        "rows": [
            {
                "id": int(row["id"]),
                "date": str(row[DATE].date()),
                "store_nbr": int(row[STORE]),
                "family": str(row[FAMILY]),
                "onpromotion": int(row[PROMO]),
                **({"open": 0} if row["closed"] else {}),
            }
            for _, row in rows.iterrows()
        ]
    }
    with ServeProcess(trained.artifacts, tmp_path, clean_env=True) as service:
        answer = service.post("/api/v1/predict", body)
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    assert [p["id"] for p in predictions] == rows["id"].tolist()
    batch = trained.submission.set_index("id")["sales"]
    for prediction, closed in zip(predictions, rows["closed"], strict=True):
        assert prediction["closed"] is bool(closed)
        if closed:
            assert prediction["sales"] == 0.0
            assert prediction["model"] == "closed"
        assert math.isclose(prediction["sales"], batch[prediction["id"]], rel_tol=1e-5)
