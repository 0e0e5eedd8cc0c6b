"""A row's ``open`` field on /predict and /actuals (promise 37): a data set's own closures.

Validation runs over the seasonal-naive test predictor; the forecasts and the history store run
under ``retail-forecast serve`` (a real uvicorn on 127.0.0.1, SQLite) over a real tiny bundle,
and are compared with the batch path (``LocalPredictor.predict_from``) given the same closures.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from api_helpers import day, series_rows, serve, wait_ready
from fastapi.testclient import TestClient
from naive_backend import SeasonalNaivePredictor, make_history
from serve_process import ServeProcess

from retail_forecast.app import create_app
from retail_forecast.artifacts import ModelBundle
from retail_forecast.config import AwsConfig
from retail_forecast.inference.local import LocalPredictor
from retail_forecast.schema import DATE, FAMILY, IS_CLOSED, PROMO, STORE, TARGET
from retail_forecast.storage.history import HistoryStore

sys.path.insert(0, str(Path(__file__).parents[1] / "inference"))

from bundle_helpers import TinyBundle, build_tiny_bundle
from sagemaker_helpers import blended_bundle, runtime_server

PREDICT = "/api/v1/predict"
ACTUALS = "/api/v1/actuals"


# -- validation (the in-process app over the seasonal-naive predictor) ------------------------


@pytest.mark.parametrize("value", [2, -1, "0", "1", True, False, None, 1.0, 0.0, [0]])
def test_p37_a_bad_open_value_is_422_naming_the_field_and_the_allowed_values(value: Any) -> None:
    rows = series_rows(days=5)
    rows[3]["open"] = value
    with serve(SeasonalNaivePredictor(make_history())) as client:
        predict = client.post(PREDICT, json={"rows": rows})
        actual = [{**row, "sales": 0.0} for row in rows[3:4]]
        actual[0]["date"] = day(1)
        actuals = client.post(ACTUALS, json={"rows": actual})
    for response, index in ((predict, 3), (actuals, 0)):
        assert response.status_code == 422, response.text
        body = response.json()
        (item,) = [i for i in body["detail"] if i["loc"][:2] == ["rows", index]]
        assert item["field"] == f"rows[{index}].open"
        assert "0 (closed that day) or 1 (open" in item["msg"]
        assert body["allowed"]["open"] == [0, 1]
        assert body["bad_rows"] == [index]


def test_p37_open_0_is_answered_closed_and_completes_the_window() -> None:
    rows = series_rows(days=4)
    rows[1]["open"] = 0
    rows[2]["open"] = 1
    with serve(SeasonalNaivePredictor(make_history())) as client:
        answer = client.post(PREDICT, json={"rows": rows})
        missing = client.post(PREDICT, json={"rows": [rows[0], *rows[2:]]})
        plain = client.post(PREDICT, json={"rows": series_rows(days=4)})
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    assert predictions[1] | {"date": None} == {
        "date": None,
        "store_nbr": 1,
        "family": "BEVERAGES",
        "sales": 0.0,
        "model": "closed",
        "closed": True,
    }
    assert plain.json()["predictions"][1]["sales"] > 0  # what open 1 gives that day
    assert [p["closed"] for p in predictions] == [False, True, False, False]
    # a closed day sent with open 0 counts for the window; left out, it is missing
    assert missing.status_code == 422
    assert missing.json()["missing_rows"] == [
        {"date": day(2), "store_nbr": 1, "family": "BEVERAGES"}
    ]


def test_p37_actuals_of_a_closed_day_must_have_sales_0() -> None:
    rows = [{**row, "sales": 0.0} for row in series_rows(days=1)]
    rows.append({**rows[0], "family": "GROCERY I", "sales": 5.0, "open": 0})
    with serve(SeasonalNaivePredictor(make_history())) as client:
        refused = client.post(ACTUALS, json={"rows": rows})
    assert refused.status_code == 422, refused.text
    (item,) = refused.json()["detail"]
    assert (item["field"], item["type"]) == ("rows[1].sales", "sales_on_closed_day")
    assert "open 0" in item["msg"]


def test_p37_openapi_documents_open_on_both_rows() -> None:
    with serve(SeasonalNaivePredictor(make_history())) as client:
        schemas = client.get("/openapi.json").json()["components"]["schemas"]
    for name in ("PredictRow", "ActualsRow"):
        field = schemas[name]["properties"]["open"]
        assert (field["type"], field["enum"], field["minimum"], field["maximum"]) == (
            "integer",
            [0, 1],
            0,
            1,
        )
        assert "open" not in schemas[name]["required"]


# -- forecasts and the history store (retail-forecast serve over a real bundle) ----------------


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> TinyBundle:
    return build_tiny_bundle(tmp_path_factory.mktemp("open-bundle"))


@pytest.fixture
def service(bundle: TinyBundle, tmp_path: Path) -> Iterator[ServeProcess]:
    with ServeProcess(bundle.artifacts, tmp_path / "service") as started:
        yield started


def window_rows(start: dt.date, series: tuple[int, str], days: int = 16) -> list[dict[str, Any]]:
    store, family = series
    return [
        {
            "date": (start + dt.timedelta(days=k)).isoformat(),
            "store_nbr": store,
            "family": family,
            "onpromotion": k % 3,
        }
        for k in range(days)
    ]


def batch_forecast(
    bundle: TinyBundle, history: pd.DataFrame, rows: list[dict[str, Any]]
) -> list[float]:
    """The batch path: ``predict_from`` a canonical history, closures as ``is_closed`` rows."""
    families = sorted(str(f) for f in bundle.sales[FAMILY].unique())
    frame = pd.DataFrame(
        {
            DATE: pd.to_datetime([r["date"] for r in rows]),
            STORE: np.array([r["store_nbr"] for r in rows], dtype=np.int64),
            FAMILY: pd.Categorical([r["family"] for r in rows], categories=families),
            PROMO: np.array([r["onpromotion"] for r in rows], dtype=np.int64),
            IS_CLOSED: np.array([r.get("open", 1) == 0 for r in rows], dtype=bool),
        }
    )
    predictor = LocalPredictor.from_bundle(ModelBundle.open_current(bundle.artifacts))
    out: list[float] = predictor.predict_from(history, frame)[TARGET].tolist()
    return out


def busiest(bundle: TinyBundle) -> tuple[int, str]:
    sales = bundle.sales
    last = sales[sales[DATE] > sales[DATE].max() - pd.Timedelta(days=28)]
    key = last.groupby([STORE, last[FAMILY].astype(str)])[TARGET].sum().idxmax()
    return int(key[0]), str(key[1])


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_p37_served_closure_is_0_and_the_next_days_match_the_batch_path(
    bundle: TinyBundle, service: ServeProcess
) -> None:
    end = bundle.sales[DATE].max().date()
    series = busiest(bundle)
    plain = window_rows(end + dt.timedelta(days=1), series)
    shut = [dict(row) for row in plain]
    shut[2]["open"] = 0
    shut[5]["open"] = 1  # the default, said explicitly
    answered = service.post(PREDICT, {"rows": shut})
    assert answered.status_code == 200, answered.text
    predictions = answered.json()["predictions"]
    assert (predictions[2]["sales"], predictions[2]["model"]) == (0.0, "closed")
    assert [p["closed"] for p in predictions] == [k == 2 for k in range(16)]
    served = [p["sales"] for p in predictions]
    assert served == batch_forecast(bundle, bundle.sales, shut)
    # the closure changes the days after it: it is not forecast as if it were open
    open_answer = service.post(PREDICT, {"rows": plain})
    assert open_answer.status_code == 200
    assert [p["sales"] for p in open_answer.json()["predictions"]][3:] != served[3:]
    # a request without open is answered byte for byte as one with open 1 on every row
    all_open = service.post(PREDICT, {"rows": [{**row, "open": 1} for row in plain]})
    assert all_open.content == open_answer.content


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_p37_an_open_0_actual_is_stored_closed_and_lags_carry_over_it(
    bundle: TinyBundle, service: ServeProcess
) -> None:
    sales = bundle.sales
    end = sales[DATE].max()
    last = sales[sales[DATE] == end]
    series = busiest(bundle)
    day1 = (end + pd.Timedelta(days=1)).date()
    actuals = [
        {
            "date": day1.isoformat(),
            "store_nbr": int(r.store_nbr),
            "family": str(r.family),
            "onpromotion": 0,
            "sales": 0.0 if (int(r.store_nbr), str(r.family)) == series else float(r.sales),
            **({"open": 0} if (int(r.store_nbr), str(r.family)) == series else {}),
        }
        for r in last.itertuples()
    ]
    closed_k = next(k for k, row in enumerate(actuals) if "open" in row)
    stored = service.post(ACTUALS, {"rows": actuals})
    assert stored.status_code == 200, stored.text
    assert stored.json()["history_end"] == day1.isoformat()
    assert service.post(ACTUALS, {"rows": actuals}).json()["appended"] == 0  # idempotent
    reopened = [dict(row) for row in actuals]
    del reopened[closed_k]["open"]
    conflict = service.post(ACTUALS, {"rows": reopened})  # the same day said open: a different fact
    assert conflict.status_code == 409, conflict.text
    assert "recorded closed, received open" in conflict.json()["message"]

    (db,) = service.history_dir.glob("*.sqlite")
    with HistoryStore.open(db) as store:
        snapshot = store.snapshot()
    row = snapshot.index[series]
    assert snapshot.dates[-1] == np.datetime64(day1)
    assert bool(snapshot.is_closed[row, -1]) is True
    assert int(snapshot.is_closed[:, -1].sum()) == 1

    appended = pd.DataFrame(
        {
            DATE: pd.to_datetime([a["date"] for a in actuals]),
            STORE: np.array([a["store_nbr"] for a in actuals], dtype=np.int64),
            FAMILY: pd.Categorical([a["family"] for a in actuals], dtype=sales[FAMILY].dtype),
            TARGET: np.array([a["sales"] for a in actuals], dtype=np.float64),
            PROMO: np.zeros(len(actuals), dtype=np.int64),
            IS_CLOSED: np.array(["open" in a for a in actuals], dtype=bool),
        }
    )
    history = pd.concat([sales[list(appended.columns)], appended], ignore_index=True)
    rows = window_rows(day1 + dt.timedelta(days=1), series)
    served = service.post(PREDICT, {"rows": rows})
    assert served.status_code == 200, served.text
    assert [p["sales"] for p in served.json()["predictions"]] == batch_forecast(
        bundle, history, rows
    )


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_p37_the_sagemaker_backend_carries_open_0_like_the_local_one(
    bundle: TinyBundle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The closure reaches both remote models (the LSTM's future tensor, XGBoost's recursion)."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"):
        monkeypatch.delenv(name, raising=False)
    blended = blended_bundle(bundle, tmp_path / "blended")  # both models run on every row
    rows = window_rows(bundle.sales[DATE].max().date() + dt.timedelta(days=1), busiest(bundle))
    rows[4]["open"] = 0
    answers = []
    with runtime_server(bundle.artifacts, {"xgb": bundle.artifacts, "nn": bundle.artifacts}) as (
        url,
        _,
    ):
        for backend in ("local", "sagemaker"):
            monkeypatch.setenv("PREDICTOR_BACKEND", backend)
            settings = bundle.settings(tmp_path / backend, artifacts=blended)
            aws = AwsConfig(
                runtime_endpoint_url=url, xgboost_endpoint_name="xgb", lstm_endpoint_name="nn"
            )
            with TestClient(create_app(settings.model_copy(update={"aws": aws}))) as client:
                wait_ready(client, timeout=60)
                response = client.post(PREDICT, json={"rows": rows})
            assert response.status_code == 200, response.text
            answers.append(response.json()["predictions"])
    local, remote = answers
    assert [p["model"] for p in remote] == [p["model"] for p in local]
    assert remote[4] == local[4] == {**local[4], "sales": 0.0, "model": "closed", "closed": True}
    assert "hybrid" in {p["model"] for p in remote}
    np.testing.assert_allclose(
        [p["sales"] for p in remote], [p["sales"] for p in local], rtol=1e-6, atol=0
    )
