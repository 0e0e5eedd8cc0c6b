"""``"explain": true`` on POST /api/v1/predict (promise 41).

Strict validation and the backend rule in process over the seasonal-naive predictor; then a
real ``retail-forecast serve`` (uvicorn on 127.0.0.1) over a real tiny bundle, served alone
(XGBoost weight 1) and blended (weight 0.5, so the LSTM runs too): for every row the tree
model's contributions, the bias and the rest add up to its log1p prediction, and that
prediction is the one the served forecast was made of.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import xgboost as xgb
from api_helpers import series_rows, serve
from fastapi.testclient import TestClient
from naive_backend import SeasonalNaivePredictor, make_history
from serve_process import ServeProcess

from retail_forecast.artifacts import ModelBundle
from retail_forecast.inference.local import LocalPredictor
from retail_forecast.inference.preprocess import (
    canonical_rows,
    panel_from_snapshot,
    requested_series,
)
from retail_forecast.models.explain import explain_rows
from retail_forecast.models.tree_shap import kernel

sys.path.insert(0, str(Path(__file__).parents[1] / "inference"))

from bundle_helpers import TinyBundle, build_tiny_bundle
from sagemaker_helpers import blended_bundle

PREDICT = "/api/v1/predict"
TOLERANCE = 1e-5  # float32 TreeSHAP values summed in float64


@pytest.fixture
def naive() -> Iterator[TestClient]:
    with serve(SeasonalNaivePredictor(make_history())) as client:
        yield client


@pytest.mark.parametrize("value", ["true", 1, 0, None, [True], {"on": True}])
def test_p41_explain_must_be_a_json_boolean(naive: TestClient, value: Any) -> None:
    answer = naive.post(PREDICT, json={"rows": series_rows(), "explain": value})
    assert answer.status_code == 422, answer.text
    body = answer.json()
    (item,) = body["detail"]
    assert (item["loc"], item["field"], item["type"]) == (["explain"], "explain", "bool_type")
    assert "JSON boolean, true or false" in item["msg"]
    assert body["allowed"] == {"explain": [True, False]}


def test_p41_a_bad_explain_and_a_bad_quantile_are_both_named(naive: TestClient) -> None:
    answer = naive.post(PREDICT, json={"rows": series_rows(), "explain": 1, "quantiles": [2]})
    assert answer.status_code == 422
    fields = {item["field"] for item in answer.json()["detail"]}
    assert fields == {"explain", "quantiles[0]"}
    assert set(answer.json()["allowed"]) == {"explain", "quantiles"}


def test_p41_explain_false_answers_the_bytes_of_a_request_without_it(naive: TestClient) -> None:
    plain = naive.post(PREDICT, json={"rows": series_rows()})
    off = naive.post(PREDICT, json={"rows": series_rows(), "explain": False})
    assert plain.status_code == off.status_code == 200, off.text
    assert off.content == plain.content
    assert b"explanation" not in plain.content


def test_p41_a_backend_without_the_booster_answers_409(naive: TestClient) -> None:
    answer = naive.post(PREDICT, json={"rows": series_rows(), "explain": True})
    assert answer.status_code == 409, answer.text
    body = answer.json()
    assert body["error"] == "explain_unavailable"
    assert "local backend" in body["message"]
    assert body["detail"][0]["field"] == "explain"


def test_p41_explain_is_in_the_openapi_schema(naive: TestClient) -> None:
    schemas = naive.get("/openapi.json").json()["components"]["schemas"]
    explain = schemas["PredictRequest"]["properties"]["explain"]
    assert explain["type"] == "boolean"
    assert explain["default"] is False
    assert "Prediction" in schemas
    assert "explanation" in schemas["Prediction"]["properties"]
    assert "tree_log1p" in schemas["Explanation"]["properties"]


# -- a real service over a real bundle -------------------------------------------------------


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> TinyBundle:
    return build_tiny_bundle(tmp_path_factory.mktemp("explain-bundle"))


def every_series(bundle: TinyBundle) -> list[dict[str, Any]]:
    """The whole window of every series; one row says the store is closed (``open`` 0)."""
    end = bundle.sales["date"].max().date()
    stores = sorted(int(s) for s in bundle.sales["store_nbr"].unique())
    families = sorted(str(f) for f in bundle.sales["family"].astype(str).unique())
    rows = [
        {**row, "onpromotion": k % 3}
        for s in stores
        for f in families
        for k, row in enumerate(series_rows(s, f, 16, end=end))
    ]
    rows[4]["open"] = 0
    return rows


def check_every_row(predictions: list[dict[str, Any]], weight: float) -> int:
    """Assert each row's sum and weights; return how many rows were explained."""
    explained = 0
    for p in predictions:
        e = p["explanation"]
        if p["model"] in ("closed", "zero_rule"):
            assert e == {"explained": False, "reason": e["reason"]}
            assert e["reason"].startswith(p["model"] + ":")
            continue
        explained += 1
        assert e["explained"] is True
        assert len(e["contributions"]) == 8
        values = [c["contribution"] for c in e["contributions"]]
        assert values == sorted(values, key=abs, reverse=True)
        total = e["bias"] + sum(values) + e["other"]
        assert math.isclose(total, e["tree_log1p"], abs_tol=TOLERANCE), p
        assert (e["xgboost_weight"], e["lstm_weight"]) == (weight, 1.0 - weight)
        if weight == 1.0:  # the served forecast is the tree model's: expm1 of what is explained
            expected = max(math.expm1(e["tree_log1p"]), 0.0)
            assert math.isclose(p["sales"], expected, rel_tol=1e-9, abs_tol=1e-9), p
        else:
            assert "LSTM part is not explained" in e["note"]
    return explained


@pytest.mark.integration
@pytest.mark.timeout(300)
@pytest.mark.parametrize("blend", [1.0, 0.5], ids=["xgboost-alone", "hybrid"])
def test_p41_contributions_sum_to_the_tree_prediction_on_every_served_row(
    bundle: TinyBundle, tmp_path: Path, blend: float
) -> None:
    artifacts = bundle.artifacts if blend == 1.0 else blended_bundle(bundle, tmp_path / "blend")
    rows = every_series(bundle)
    with (
        ServeProcess(artifacts, tmp_path / "serve") as service,
        httpx.Client(base_url=service.url, timeout=60) as http,
    ):
        plain = http.post(PREDICT, json={"rows": rows})
        answer = http.post(PREDICT, json={"rows": rows, "explain": True})
        single = http.post(PREDICT, json={"rows": rows[16:32], "explain": True})
    assert answer.status_code == plain.status_code == single.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    assert predictions[4]["model"] == "closed"
    assert check_every_row(predictions, blend) == len(rows) - 1
    assert check_every_row(single.json()["predictions"], blend) == 16
    assert single.json()["predictions"] == predictions[16:32]  # a series alone: the same
    # explain changes nothing else of the answer
    stripped = [{k: v for k, v in p.items() if k != "explanation"} for p in predictions]
    assert stripped == plain.json()["predictions"]
    assert b"explanation" not in plain.content
    assert json.loads(plain.content)["model_version"] == answer.json()["model_version"]


@pytest.mark.parametrize("engine", ["kernel", "pred_contribs"])
def test_p41_one_treeshap_call_explains_every_row_of_a_request(
    bundle: TinyBundle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: str
) -> None:
    """All rows of all series in ONE TreeSHAP call, by the kernel or by XGBoost.

    The compiled kernel (models/tree_shap.py) where it was built; otherwise ``pred_contribs``
    on a matrix built with one thread (XGBoost's default builds it with every core: its
    OpenMP team then spins, and on two shared cores that cost ~15-20 ms per request,
    bench/dashboard.py). The sums stay exact either way.
    """
    if engine == "kernel" and kernel() is None:
        pytest.skip("the TreeSHAP kernel was not built (no C compiler at install)")
    predictor = LocalPredictor.from_bundle(
        ModelBundle.open_current(bundle.artifacts), history_db=tmp_path / "history.sqlite"
    )
    assert predictor.store is not None
    domain = predictor.domain
    frame = pd.DataFrame(
        [
            row
            for family in domain.families[:2]
            for row in series_rows(domain.stores[0], family, 16, promo=1, end=domain.history_end)
        ]
    )
    frame["date"] = pd.to_datetime(frame["date"])
    request = canonical_rows(frame, domain.families)
    panel = panel_from_snapshot(predictor.store.snapshot(), requested_series(request))
    threads: list[Any] = []
    explained: list[int] = []
    forecaster = predictor.model.xgboost
    real_matrix, booster = xgb.DMatrix, forecaster.booster_
    real_predict = booster.predict
    if engine == "pred_contribs":
        forecaster.tree_shap_ = (None,)
    shap = forecaster.tree_shap()
    assert (shap is None) == (engine == "pred_contribs")

    def matrix(*args: Any, **kwargs: Any) -> xgb.DMatrix:
        threads.append(kwargs.get("nthread"))
        return real_matrix(*args, **kwargs)

    def predict(data: xgb.DMatrix, **kwargs: Any) -> Any:
        explained.append(data.num_row() if kwargs.get("pred_contribs") else -1)
        return real_predict(data, **kwargs)

    monkeypatch.setattr(xgb, "DMatrix", matrix)
    monkeypatch.setattr(booster, "predict", predict)
    if shap is not None:
        real_contributions = type(shap).contributions

        def contributions(self: Any, x: Any, **options: Any) -> Any:
            explained.append(len(x))
            return real_contributions(self, x, **options)

        monkeypatch.setattr(type(shap), "contributions", contributions)
    rows = explain_rows(predictor.model, panel, request)
    predictor.close()
    assert explained == [32]
    assert threads == ([] if engine == "kernel" else [1])
    assert len(rows) == 32
    for e in rows:
        total = e.bias + sum(c.contribution for c in e.contributions) + e.other
        assert math.isclose(total, e.tree_log1p, abs_tol=TOLERANCE)


def test_p41_the_service_builds_the_treeshap_tables_before_the_first_explain(
    bundle: TinyBundle, tmp_path: Path
) -> None:
    """Loading the service's predictor starts building the kernel's tables in the background."""
    if kernel() is None:
        pytest.skip("the TreeSHAP kernel was not built (no C compiler at install)")
    predictor = LocalPredictor.load(bundle.settings(tmp_path / "history"))
    forecaster = predictor.model.xgboost
    deadline = time.monotonic() + 30
    while forecaster.tree_shap_ is None and time.monotonic() < deadline:
        time.sleep(0.05)
    predictor.close()
    assert forecaster.tree_shap_ is not None
    assert forecaster.tree_shap_[0] is not None
