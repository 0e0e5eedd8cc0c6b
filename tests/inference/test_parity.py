"""Parity: the API, `retail-forecast forecast` and the in-process hybrid give the same numbers."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from bundle_helpers import TinyBundle
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from retail_forecast.api.errors import ApiError
from retail_forecast.api.predict_service import PredictJob, answer_and_record, answer_batch
from retail_forecast.app import create_app
from retail_forecast.cli import app as cli_app
from retail_forecast.inference.local import LocalPredictor
from retail_forecast.schema import DATE, FAMILY, ID, PROMO, STORE, TARGET


def api_rows(test: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {
            "id": int(r[ID]),
            "date": pd.Timestamp(r[DATE]).date().isoformat(),
            "store_nbr": int(r[STORE]),
            "family": str(r[FAMILY]),
            "onpromotion": int(r[PROMO]),
        }
        for r in test.to_dict("records")
    ]


def api_predict(tiny_bundle: TinyBundle, history: Path, rows: list[dict[str, Any]]) -> pd.Series:
    """Sales by id from the real app with its default (LocalPredictor) loader."""
    app = create_app(tiny_bundle.settings(history))
    with TestClient(app, raise_server_exceptions=False) as client:
        deadline = time.monotonic() + 30
        while client.get("/ready").status_code != 200:
            assert time.monotonic() < deadline, client.get("/ready").text
            time.sleep(0.02)
        response = client.post("/api/v1/predict", json={"rows": rows})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] == tiny_bundle.version
    predictions = body["predictions"]
    assert [p["id"] for p in predictions] == [r["id"] for r in rows]  # request order
    return pd.Series([p["sales"] for p in predictions], index=[p["id"] for p in predictions])


@pytest.fixture
def cli_submission(
    tiny_bundle: TinyBundle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> pd.Series:
    monkeypatch.chdir(tmp_path)  # no .env, logs and data/ under tmp
    monkeypatch.setenv("RF_LOG_DIR", str(tmp_path / "logs"))
    out = tmp_path / "submission.csv"
    result = CliRunner().invoke(
        cli_app,
        [
            "forecast",
            "--data-dir",
            str(tiny_bundle.data_dir),
            "--out",
            str(out),
            "--artifacts",
            str(tiny_bundle.artifacts),
        ],
    )
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out, float_precision="round_trip")
    assert list(frame.columns) == [ID, TARGET]
    assert len(frame) == len(tiny_bundle.test)
    assert frame[ID].is_unique
    assert set(frame[ID]) == set(tiny_bundle.test[ID])
    return frame.set_index(ID)[TARGET]


def test_api_equals_cli_equals_in_process_all_rows(
    tiny_bundle: TinyBundle, tmp_path: Path, cli_submission: pd.Series
) -> None:
    test = tiny_bundle.test
    served = api_predict(tiny_bundle, tmp_path / "history", api_rows(test))
    model = LocalPredictor.load(tiny_bundle.settings(tmp_path / "history-2")).model
    in_process = model.predict(tiny_bundle.sales, test).set_index(ID)[TARGET]
    ids = test[ID].to_numpy()
    np.testing.assert_array_equal(served.loc[ids].to_numpy(), in_process.loc[ids].to_numpy())
    np.testing.assert_array_equal(cli_submission.loc[ids].to_numpy(), served.loc[ids].to_numpy())
    assert (served > 0).sum() > len(served) // 2  # real forecasts, not a wall of zeros


def test_one_series_from_the_api_equals_the_cli_rows(
    tiny_bundle: TinyBundle, tmp_path: Path, cli_submission: pd.Series
) -> None:
    test = tiny_bundle.test
    one = test[(test[STORE] == 3) & (test[FAMILY].astype(str) == str(test[FAMILY].iloc[-1]))]
    assert len(one) == 16
    served = api_predict(tiny_bundle, tmp_path / "history", api_rows(one))
    np.testing.assert_allclose(
        served.to_numpy(), cli_submission.loc[one[ID].to_numpy()].to_numpy(), rtol=1e-9, atol=1e-9
    )


def test_micro_batched_requests_equal_each_request_alone(
    tiny_bundle: TinyBundle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    predictor = LocalPredictor.load(tiny_bundle.settings(tmp_path / "history"))
    test = tiny_bundle.test
    series = [group for _, group in test.groupby([STORE, FAMILY], observed=True)][:6]
    bodies = [json.dumps({"rows": api_rows(group)}).encode() for group in series]
    bodies.insert(2, bodies[0])  # the same series twice: not in the same model call
    bodies.insert(4, json.dumps({"rows": [{**api_rows(series[1])[0], "store_nbr": 999}]}).encode())
    calls: list[int] = []
    predict = predictor.predict

    def counting(rows: pd.DataFrame) -> pd.DataFrame:
        calls.append(len(rows))
        return predict(rows)

    monkeypatch.setattr(predictor, "predict", counting)
    outcomes = answer_batch([PredictJob(body, predictor, 1000) for body in bodies])
    assert calls == [6 * 16, 16]  # six series in one call, the repeated one in a second
    invalid = outcomes[4]
    assert isinstance(invalid, ApiError)
    with pytest.raises(ApiError) as alone_error:
        answer_and_record(bodies[4], predictor=predictor, max_rows=1000)
    assert (invalid.status, invalid.message) == (422, alone_error.value.message)
    assert "rows[0].store_nbr" in json.dumps(invalid.extra)  # the field is named
    for body, outcome in zip(bodies, outcomes, strict=True):
        if body == bodies[4]:
            continue
        alone = answer_and_record(body, predictor=predictor, max_rows=1000)
        assert not isinstance(outcome, Exception), outcome
        got, want = json.loads(outcome[0]), json.loads(alone[0])
        got_sales = [p.pop("sales") for p in got["predictions"]]
        want_sales = [p.pop("sales") for p in want["predictions"]]
        assert got == want  # ids, dates, series, model names, version, in request order
        np.testing.assert_allclose(got_sales, want_sales, rtol=1e-9, atol=1e-9)
        assert outcome[1].history_end == alone[1].history_end
