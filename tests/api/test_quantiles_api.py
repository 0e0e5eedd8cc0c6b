"""``"quantiles"`` on POST /api/v1/predict (promise 38, the API side).

In process over the seasonal-naive predictor given a real calibration: quantiles are the
calibration applied to the served points, never cross, are >= 0 and 0 on closed and zero-rule
rows (hypothesis over random bodies); every bad level is a 422 naming ``quantiles[i]``; a model
without a calibration answers 409; asking for quantiles leaves the points unchanged. Then a
real ``retail-forecast serve`` (uvicorn on 127.0.0.1) over a real tiny bundle, and the
SageMaker backend against the local one.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from api_helpers import series_rows, serve, wait_ready
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from naive_backend import DEAD_SERIES, FAMILIES, STORES, SeasonalNaivePredictor, make_history
from serve_process import ServeProcess

from retail_forecast.api.errors import ApiError
from retail_forecast.api.predict_service import PredictJob, answer_and_record, answer_batch
from retail_forecast.app import create_app
from retail_forecast.artifacts import ModelBundle
from retail_forecast.config import AwsConfig
from retail_forecast.inference.local import LocalPredictor
from retail_forecast.models.quantiles import QuantileCalibration, zero_rows

sys.path.insert(0, str(Path(__file__).parents[1] / "inference"))

from bundle_helpers import TinyBundle, build_tiny_bundle
from sagemaker_helpers import blended_bundle, runtime_server

PREDICT = "/api/v1/predict"
LEVELS = [0.1, 0.5, 0.9]
M5 = (0.005, 0.025, 0.165, 0.25, 0.5, 0.75, 0.835, 0.975, 0.995)
CHRISTMAS_END = dt.date(2017, 12, 20)  # the window holds 25 December (closed by date rule)


def make_calibration(horizon: int = 16, seed: int = 0) -> QuantileCalibration:
    """A real fit on skewed residuals: wide enough that levels give visibly different values."""
    rng = np.random.default_rng(seed)
    point = rng.gamma(2.0, 30.0, size=20_000) + 0.5
    actual = np.maximum(point * rng.lognormal(0.0, 0.4, size=point.size) - 1.0, 0.0)
    day = rng.integers(1, horizon + 1, size=point.size)
    return QuantileCalibration.fit(actual, point, day, horizon=horizon)


class CalibratedNaive(SeasonalNaivePredictor):
    """The seasonal-naive test predictor with a quantile calibration, as a bundle would have."""

    def __init__(self, end: dt.date, calibration: QuantileCalibration) -> None:
        super().__init__(make_history(end))
        self.calibration = calibration


def expected(
    calibration: QuantileCalibration, predictions: list[dict[str, Any]], levels: list[float]
) -> np.ndarray:
    """The core's quantiles of the served points (horizon day from the served dates)."""
    end = min(dt.date.fromisoformat(p["date"]) for p in predictions) - dt.timedelta(days=1)
    point = np.array([p["sales"] for p in predictions])
    labels = np.array([p["model"] for p in predictions])
    days = np.array([(dt.date.fromisoformat(p["date"]) - end).days for p in predictions])
    return calibration.quantiles(point, days, levels, zero=zero_rows(point, labels))


def served(predictions: list[dict[str, Any]], levels: list[float]) -> np.ndarray:
    keys = [repr(level) for level in levels]
    assert all(list(p["quantiles"]) == keys for p in predictions)  # the request's order
    return np.array([[p["quantiles"][k] for k in keys] for p in predictions])


# -- answers --------------------------------------------------------------------------------


def test_p38_api_quantiles_are_the_calibration_applied_to_the_served_points() -> None:
    calibration = make_calibration()
    rows = series_rows(2, "BEVERAGES", end=CHRISTMAS_END)
    rows += series_rows(*DEAD_SERIES, end=CHRISTMAS_END)
    rows[2]["open"] = 0
    levels = [0.9, 0.1, 0.5]  # any order: answered in the request's order
    with serve(CalibratedNaive(CHRISTMAS_END, calibration)) as client:
        answer = client.post(PREDICT, json={"rows": rows, "quantiles": levels})
        plain = client.post(PREDICT, json={"rows": rows})
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    values = served(predictions, levels)
    np.testing.assert_array_equal(values, expected(calibration, predictions, levels))
    models = [p["model"] for p in predictions]
    assert {"closed", "zero_rule", "hybrid"} <= set(models)
    rule = np.isin(models, ["closed", "zero_rule"])
    assert (values[rule] == 0).all()
    positive = np.array([p["sales"] for p in predictions]) > 0
    assert (values[positive & ~rule] > 0).all()
    ordered = values[:, np.argsort(levels)]
    assert (np.diff(ordered, axis=1) >= 0).all()
    assert (ordered[positive & ~rule, 2] > ordered[positive & ~rule, 0]).all()  # a real band
    # asking for quantiles changes nothing else, byte for byte
    stripped = {**answer.json(), "predictions": [
        {k: v for k, v in p.items() if k != "quantiles"} for p in predictions
    ]}  # fmt: skip
    assert json.dumps(stripped) == json.dumps(plain.json())
    assert b"quantiles" not in plain.content


rows_strategy = st.lists(
    st.tuples(
        st.sampled_from(STORES),
        st.sampled_from(FAMILIES),
        st.integers(1, 16),  # the series' last requested day
        st.lists(st.booleans(), min_size=16, max_size=16),  # open flags
    ),
    min_size=1,
    max_size=4,
    unique_by=lambda t: (t[0], t[1]),
)
level_strategy = st.lists(
    st.one_of(
        st.sampled_from(M5),
        st.floats(min_value=1e-9, max_value=1 - 1e-9, exclude_min=True, exclude_max=True),
    ),
    min_size=1,
    max_size=9,
    unique=True,
)


def test_p38_api_any_request_gets_no_crossing_no_negative_and_0_on_rule_rows() -> None:
    calibration = make_calibration(seed=1)
    predictor = CalibratedNaive(CHRISTMAS_END, calibration)

    @given(series=rows_strategy, levels=level_strategy, seed=st.integers(0, 2**16))
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    def check(
        series: list[tuple[int, str, int, list[bool]]], levels: list[float], seed: int
    ) -> None:
        rows = []
        for store, family, days, opens in series:
            for k, row in enumerate(series_rows(store, family, days, end=CHRISTMAS_END)):
                rows.append({**row, **({} if opens[k] else {"open": 0})})
        np.random.default_rng(seed).shuffle(rows)  # any row order
        answer = client.post(PREDICT, json={"rows": rows, "quantiles": levels})
        assert answer.status_code == 200, answer.text
        predictions = answer.json()["predictions"]
        values = served(predictions, levels)
        np.testing.assert_array_equal(values, expected(calibration, predictions, levels))
        assert (values >= 0).all()
        assert np.isfinite(values).all()
        assert (np.diff(values[:, np.argsort(levels)], axis=1) >= 0).all()
        for row, prediction, value in zip(rows, predictions, values, strict=True):
            rule = row.get("open") == 0 or row["date"] == "2017-12-25"
            if rule or prediction["model"] in ("closed", "zero_rule"):
                assert (value == 0).all(), (row, prediction)

    with serve(predictor) as client:
        check()


def test_p38_api_a_micro_batch_answers_each_request_as_alone_and_logs_its_quantiles() -> None:
    predictor = CalibratedNaive(CHRISTMAS_END, make_calibration())
    bodies = [
        {"rows": series_rows(1, "BEVERAGES", end=CHRISTMAS_END), "quantiles": [0.9, 0.1]},
        {"rows": series_rows(2, "GROCERY I", 9, end=CHRISTMAS_END)},
        {"rows": series_rows(3, "BEVERAGES", 12, end=CHRISTMAS_END), "quantiles": list(M5)},
    ]
    raw = [json.dumps(body).encode() for body in bodies]
    together = answer_batch([PredictJob(body, predictor, 1000) for body in raw])
    for body, request, outcome in zip(raw, bodies, together, strict=True):
        assert not isinstance(outcome, Exception)
        alone = answer_and_record(body, predictor=predictor, max_rows=1000)
        assert outcome[0] == alone[0]
        logged = outcome[1].quantiles
        if "quantiles" not in request:
            assert logged is None
            continue
        predictions = json.loads(outcome[0])["predictions"]
        assert logged is not None
        assert list(logged) == request["quantiles"]
        for level, values in logged.items():
            assert list(values) == [p["quantiles"][repr(level)] for p in predictions]


# -- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, 1, -0.1, 1.5, "0.5", None, True, 0.1, [0.5]])
def test_p38_api_a_bad_level_is_422_naming_quantiles_i(bad: Any) -> None:
    with serve(CalibratedNaive(CHRISTMAS_END, make_calibration())) as client:
        answer = client.post(PREDICT, json={"rows": series_rows(), "quantiles": [0.1, bad, 0.9]})
    assert answer.status_code == 422, answer.text
    body = answer.json()
    (item,) = body["detail"]
    assert item["field"] == "quantiles[1]"
    if bad == 0.1:
        assert item["type"] == "duplicate_level"
        assert "repeats quantiles[0]" in item["msg"]
    else:
        assert "strictly between 0 and 1" in item["msg"]
    assert body["allowed"]["quantiles"] == {
        "exclusive_minimum": 0,
        "exclusive_maximum": 1,
        "max_levels": 9,
        "unique": True,
    }


@pytest.mark.parametrize(
    ("quantiles", "field", "words"),
    [
        ([0.05 * k for k in range(1, 11)], "quantiles[9]", "at most 9"),
        (None, "quantiles", "1 to 9 distinct levels"),
        ([], "quantiles", "1 to 9 distinct levels"),
        ("0.1,0.9", "quantiles", "1 to 9 distinct levels"),
        ({"0.1": 1}, "quantiles", "1 to 9 distinct levels"),
    ],
)
def test_p38_api_a_bad_quantiles_field_is_422_naming_it(
    quantiles: Any, field: str, words: str
) -> None:
    with serve(CalibratedNaive(CHRISTMAS_END, make_calibration())) as client:
        answer = client.post(PREDICT, json={"rows": series_rows(), "quantiles": quantiles})
        infinite = client.post(
            PREDICT,
            content=json.dumps({"rows": series_rows(days=1)})[:-1] + ', "quantiles": [1e999]}',
            headers={"Content-Type": "application/json"},
        )
    assert answer.status_code == 422, answer.text
    (item,) = answer.json()["detail"]
    assert item["field"] == field
    assert words in item["msg"]
    assert infinite.status_code == 422
    assert [i["field"] for i in infinite.json()["detail"]] == ["quantiles[0]"]


def test_p38_api_a_model_without_calibration_answers_409_not_500() -> None:
    body = {"rows": series_rows(days=3), "quantiles": LEVELS}
    predictor = SeasonalNaivePredictor(make_history())  # no calibration attribute at all
    with serve(predictor) as client:
        refused = client.post(PREDICT, json=body)
        plain = client.post(PREDICT, json={"rows": body["rows"]})
    assert refused.status_code == 409, refused.text
    error = refused.json()
    assert error["error"] == "quantiles_unavailable"
    assert "serves no quantiles" in error["message"]
    assert [i["field"] for i in error["detail"]] == ["quantiles"]
    assert plain.status_code == 200
    # in a micro-batch only the request that asks for quantiles is refused
    jobs = [PredictJob(json.dumps(b).encode(), predictor, 1000) for b in (body, plain_of(body))]
    refused_job, answered = answer_batch(jobs)
    assert isinstance(refused_job, ApiError)
    assert refused_job.status == 409
    assert not isinstance(answered, Exception)


def plain_of(body: dict[str, Any]) -> dict[str, Any]:
    return {"rows": [{**row, "store_nbr": 2} for row in body["rows"]]}


def test_p38_api_openapi_documents_the_request_levels_and_the_answer() -> None:
    with serve(CalibratedNaive(CHRISTMAS_END, make_calibration())) as client:
        schema = client.get("/openapi.json").json()
    components = schema["components"]["schemas"]
    request = components["PredictRequest"]["properties"]["quantiles"]
    assert (request["type"], request["minItems"], request["maxItems"]) == ("array", 1, 9)
    assert request["uniqueItems"] is True
    assert request["items"] == {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}
    assert "quantiles" not in components["PredictRequest"]["required"]
    answer = components["Prediction"]["properties"]["quantiles"]
    assert answer["additionalProperties"] == {"type": "number", "minimum": 0}
    assert "409" in schema["paths"][PREDICT]["post"]["responses"]


# -- real service, real bundle --------------------------------------------------------------


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> TinyBundle:
    return build_tiny_bundle(tmp_path_factory.mktemp("quantile-bundle"))


@pytest.fixture
def service_url(bundle: TinyBundle, tmp_path: Path) -> Iterator[str]:
    """``python -m retail_forecast.cli serve`` on a free port of 127.0.0.1."""
    with ServeProcess(bundle.artifacts, tmp_path) as service:
        yield service.url


def window(bundle: TinyBundle, store: int = 1) -> list[dict[str, Any]]:
    end = bundle.sales["date"].max().date()
    family = str(sorted(bundle.sales["family"].astype(str).unique())[0])
    return series_rows(store, family, 16, end=end)


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_p38_api_a_real_service_serves_the_bundle_calibration(
    bundle: TinyBundle, service_url: str
) -> None:
    calibration = LocalPredictor.from_bundle(ModelBundle.open_current(bundle.artifacts)).calibration
    assert calibration is not None
    rows = window(bundle)
    rows[5]["open"] = 0
    with httpx.Client(base_url=service_url, timeout=30) as http:
        answer = http.post(PREDICT, json={"rows": rows, "quantiles": LEVELS})
        plain = http.post(PREDICT, json={"rows": rows})
        bad = http.post(PREDICT, json={"rows": rows, "quantiles": [0.5, 0.5]})
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    values = served(predictions, LEVELS)
    np.testing.assert_array_equal(values, expected(calibration, predictions, LEVELS))
    assert (values[5] == 0).all()
    assert (np.diff(values, axis=1) >= 0).all()
    assert [p["sales"] for p in predictions] == [p["sales"] for p in plain.json()["predictions"]]
    assert b"quantiles" not in plain.content
    assert bad.status_code == 422
    assert [i["field"] for i in bad.json()["detail"]] == ["quantiles[1]"]


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_p38_api_the_sagemaker_backend_serves_the_same_quantiles_as_the_local_one(
    bundle: TinyBundle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The endpoints run the point models; the deployed bundle's calibration turns them into
    quantiles, so both backends answer the same quantiles."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"):
        monkeypatch.delenv(name, raising=False)
    blended = blended_bundle(bundle, tmp_path / "blended")
    rows = window(bundle, store=2)
    answers = []
    with runtime_server(bundle.artifacts, {"xgb": bundle.artifacts, "nn": bundle.artifacts}) as (
        url,
        _,
    ):
        for backend in ("local", "sagemaker"):
            monkeypatch.setenv("PREDICTOR_BACKEND", backend)
            settings_ = bundle.settings(tmp_path / backend, artifacts=blended)
            aws = AwsConfig(
                runtime_endpoint_url=url, xgboost_endpoint_name="xgb", lstm_endpoint_name="nn"
            )
            with TestClient(create_app(settings_.model_copy(update={"aws": aws}))) as client:
                wait_ready(client, timeout=60)
                response = client.post(PREDICT, json={"rows": rows, "quantiles": LEVELS})
            assert response.status_code == 200, response.text
            answers.append(response.json()["predictions"])
    local, remote = (served(predictions, LEVELS) for predictions in answers)
    assert (local[:, 2] > local[:, 0]).any()
    np.testing.assert_allclose(remote, local, rtol=1e-6, atol=0)
