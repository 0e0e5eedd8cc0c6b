"""The horizon is a setting: a 28-day data set trained, backtested, forecast and served end to end.

One tiny synthetic panel (test.csv of 28 days) is trained with ``forecast.horizon = 28``; the
bundle records 28 and every consumer reads it from there: the backtest's folds, XGBoost's
recursion, the LSTM's direct head, the batch forecast of test.csv and the API under a real
uvicorn on 127.0.0.1 (day 28 answered, day 29 refused with a 422 naming the field).
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "inference"))
sys.path.insert(0, str(Path(__file__).parents[1] / "api"))

from bundle_helpers import TinyBundle, build_tiny_bundle, tiny_settings
from serve_process import ServeProcess

from retail_forecast.artifacts import ModelBundle
from retail_forecast.bundle_contents import LEGACY_HORIZON, recorded_horizon
from retail_forecast.config import BacktestConfig, Settings
from retail_forecast.errors import ArtifactError, DataValidationError
from retail_forecast.inference.local import LocalPredictor
from retail_forecast.models.lstm import PREPROCESSOR_FILE as LSTM_PREPROCESSOR
from retail_forecast.models.xgboost import PREPROCESSOR_FILE as XGB_PREPROCESSOR
from retail_forecast.pipeline.batch_forecast import forecast_test
from retail_forecast.pipeline.fit import train_bundle
from retail_forecast.schema import DATE, FAMILY, PROMO, STORE, TARGET
from retail_forecast.utils.io import read_json

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

H = 28


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> TinyBundle:
    return build_tiny_bundle(tmp_path_factory.mktemp("horizon-28"), horizon=H)


@pytest.fixture(scope="module")
def predictor(bundle: TinyBundle) -> LocalPredictor:
    return LocalPredictor.from_bundle(ModelBundle.open_current(bundle.artifacts))


def _future(sales: pd.DataFrame, days: int) -> pd.DataFrame:
    last = sales[DATE].max()
    keys = sales[[STORE, FAMILY]].drop_duplicates()
    dates = pd.date_range(last + pd.Timedelta(days=1), periods=days)
    future = keys.merge(pd.DataFrame({DATE: dates}), how="cross")
    future[PROMO] = 1
    return future[[DATE, STORE, FAMILY, PROMO]]


def test_the_bundle_records_the_horizon_and_its_models_are_built_for_it(
    bundle: TinyBundle, predictor: LocalPredictor
) -> None:
    opened = ModelBundle.open_current(bundle.artifacts)
    meta = opened.manifest.metadata
    assert meta["horizon"] == H
    assert meta["domain"]["horizon"] == H
    assert read_json(opened.path_of(XGB_PREPROCESSOR.as_posix()))["horizon"] == H
    assert read_json(opened.path_of(LSTM_PREPROCESSOR))["horizon"] == H
    assert predictor.domain.horizon == H
    assert len(predictor.domain.window()) == H
    model = predictor.model
    assert model.horizon == model.xgboost.horizon == model.lstm.horizon == H
    assert model.lstm.net_.horizon_emb.num_embeddings == H  # the direct head: one step per day


def test_backtest_folds_are_horizon_days_long_and_a_horizon_apart(bundle: TinyBundle) -> None:
    settings = tiny_settings(bundle.root, horizon=H)
    result = train_bundle(
        bundle.dataset, settings, out_dir=bundle.root / "again", make_current=False
    )
    folds = result.backtest.folds
    assert len(folds) == 2
    assert all((f.end - f.start).days + 1 == H for f in folds)
    assert (folds[0].start - folds[1].start).days == H  # backtest.step unset: the horizon
    assert sorted(result.backtest.predictions["horizon_day"].unique()) == list(range(1, H + 1))


def test_xgboost_recurses_28_steps_and_the_lstm_answers_28_days(
    bundle: TinyBundle, predictor: LocalPredictor
) -> None:
    sales = bundle.sales
    future = _future(sales, H)
    model = predictor.model
    xgb = model.xgboost.predict(sales, future)[TARGET].to_numpy()
    lstm = model.lstm.predict(sales, future)[TARGET].to_numpy()
    assert np.isfinite(xgb).all()
    assert np.isfinite(lstm).all()
    last_day = future[DATE] == future[DATE].max()
    assert (xgb[last_day.to_numpy()] > 0).any()  # day 28 is a real forecast, not a fill
    with pytest.raises(DataValidationError, match=f"within {H} days"):
        model.xgboost.predict(sales, _future(sales, H + 1))
    with pytest.raises(DataValidationError, match="future dates must lie in"):
        model.lstm.predict(sales, _future(sales, H + 1))


def test_batch_forecast_covers_the_28_days_of_test_csv(bundle: TinyBundle) -> None:
    assert bundle.test[DATE].nunique() == H
    settings = bundle.settings(bundle.root / "batch-history")
    result = forecast_test(bundle.data_dir, settings, artifacts=bundle.artifacts)
    assert len(result.rows) == len(bundle.test)
    assert np.isfinite(result.rows[TARGET]).all()


def test_p34_a_manifest_without_a_horizon_reads_as_16_and_a_bad_one_is_refused() -> None:
    assert LEGACY_HORIZON == 16
    assert recorded_horizon({}) == 16
    assert recorded_horizon({"horizon": 28}) == 28
    for bad in (0, -1, "28", 2.5, True, None):
        with pytest.raises(ArtifactError, match="horizon must be a positive integer"):
            recorded_horizon({"horizon": bad})


def test_the_horizon_is_one_setting_step_follows_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RF_FORECAST__HORIZON", "48")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.forecast.horizon == 48
    assert settings.backtest.step is None  # the backtest's folds step by the horizon
    assert "horizon" not in BacktestConfig.model_fields  # one place: forecast.horizon
    monkeypatch.setenv("RF_FORECAST__HORIZON", "0")
    with pytest.raises(ValueError, match="horizon"):
        Settings(_env_file=None)  # type: ignore[call-arg]


# --- the API under a real uvicorn ------------------------------------------------------------


@pytest.fixture
def service(bundle: TinyBundle, tmp_path: Path) -> Iterator[str]:
    """``retail-forecast serve`` on the 28-day bundle; RF_FORECAST__HORIZON is left at 16."""
    # serving reads the bundle's horizon, not this setting
    with ServeProcess(bundle.artifacts, tmp_path, env={"RF_FORECAST__HORIZON": "16"}) as served:
        yield served.url


def _rows(bundle: TinyBundle, days: int) -> list[dict[str, Any]]:
    end = bundle.sales[DATE].max().date()
    store = int(bundle.sales[STORE].min())
    family = str(sorted(bundle.sales[FAMILY].unique())[0])
    return [
        {
            "date": (end + dt.timedelta(days=k)).isoformat(),
            "store_nbr": store,
            "family": family,
            "onpromotion": 1,
        }
        for k in range(1, days + 1)
    ]


def test_p34_api_answers_day_28_and_refuses_day_29_naming_the_field_and_window(
    bundle: TinyBundle, service: str
) -> None:
    answered = httpx.post(service + "/api/v1/predict", json={"rows": _rows(bundle, H)}, timeout=60)
    assert answered.status_code == 200, answered.text
    predictions = answered.json()["predictions"]
    assert len(predictions) == H
    assert predictions[-1]["date"] == _rows(bundle, H)[-1]["date"]
    refused = httpx.post(
        service + "/api/v1/predict", json={"rows": _rows(bundle, H + 1)}, timeout=60
    )
    assert refused.status_code == 422, refused.text
    detail = refused.json()["detail"]
    assert [item["loc"] for item in detail] == [["rows", H, "date"]]
    assert detail[0]["field"].endswith("date"), detail
    end = bundle.sales[DATE].max().date()
    first, last = end + dt.timedelta(days=1), end + dt.timedelta(days=H)
    assert f"{first} .. {last}" in detail[0]["msg"]
    assert f"{H}-day horizon" in detail[0]["msg"]
    spec = httpx.get(service + "/openapi.json", timeout=30).json()
    window = spec["components"]["schemas"]["PredictRow"]["properties"]["date"]["enum"]
    assert window[0] == first.isoformat()
    assert window[-1] == last.isoformat()
    assert len(window) == H
