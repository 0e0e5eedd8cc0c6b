"""The SageMaker hosting handler, the container app and the runtime stand-in over a tiny bundle."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from bundle_helpers import TinyBundle
from sagemaker_helpers import lstm_only_bundle
from sagemaker_runtime_server import create_runtime_app
from starlette.testclient import TestClient

from retail_forecast.artifacts import resolve_current
from retail_forecast.errors import ArtifactError
from retail_forecast.features.builder import panel_from_frame, promo_history
from retail_forecast.inference.container import create_container_app
from retail_forecast.inference.handler import (
    HandlerInputError,
    HostedModel,
    LSTMBatch,
    UnsupportedMediaError,
    input_fn,
    model_fn,
    output_fn,
    predict_fn,
)
from retail_forecast.models.lstm import LSTMForecaster
from retail_forecast.models.xgboost import XGBForecaster


@pytest.fixture(scope="module")
def hosted(tiny_bundle: TinyBundle) -> HostedModel:
    return model_fn(tiny_bundle.artifacts)


def feature_rows(tiny_bundle: TinyBundle) -> np.ndarray:
    """Day-1 feature rows of every series, built the way XGBForecaster.forecast_log builds them."""
    model = XGBForecaster.load(resolve_current(tiny_bundle.artifacts))
    builder = model.builder_
    panel = panel_from_frame(tiny_bundle.sales)
    lookback = builder.spec.lookback
    window = np.full((len(panel.keys), lookback + 1), np.nan)
    window[:, :-1] = panel.log_sales[:, -lookback:]
    date = pd.Timestamp(panel.dates[-1]) + pd.Timedelta(days=1)
    promo = np.arange(len(panel.keys), dtype=np.float64)
    promo_window = promo_history(panel, np.arange(len(panel.keys)), promo[:, None], lookback)
    codes = builder.encode(panel.keys)
    return builder.day_features(
        window, day=lookback, date=date, promo=promo, codes=codes, promo_window=promo_window
    )


def csv_body(rows: np.ndarray) -> bytes:
    lines = [",".join(f"{v:.9g}" for v in row) for row in rows.astype(np.float64)]
    return ("\n".join(lines) + "\n").encode()


def lstm_batch(tiny_bundle: TinyBundle) -> tuple[LSTMForecaster, LSTMBatch]:
    model = LSTMForecaster.load(resolve_current(tiny_bundle.artifacts))
    future = tiny_bundle.test.drop(columns="id")
    inputs = model.build_inputs(tiny_bundle.sales, future)
    return model, LSTMBatch(inputs.x_enc, inputs.x_fut)


def test_model_fn_accepts_a_root_or_a_bundle_dir(tiny_bundle: TinyBundle) -> None:
    by_root = model_fn(tiny_bundle.artifacts)
    by_dir = model_fn(str(resolve_current(tiny_bundle.artifacts)))
    assert by_root.version == by_dir.version == tiny_bundle.version
    assert by_root.booster is not None
    assert by_root.lstm is not None
    assert "store_nbr" in by_root.feature_names
    assert "family" in by_root.feature_names


def test_model_fn_refuses_a_directory_without_a_bundle(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="neither a bundle"):
        model_fn(tmp_path)


def test_csv_rows_give_the_booster_output_bit_for_bit(
    hosted: HostedModel, tiny_bundle: TinyBundle
) -> None:
    rows = feature_rows(tiny_bundle)
    assert rows.shape == (12, len(hosted.feature_names))
    body = output_fn(predict_fn(input_fn(csv_body(rows), "text/csv; charset=utf-8"), hosted), None)
    got = np.array(body.split(), dtype=np.float64).astype(np.float32)
    model = XGBForecaster.load(resolve_current(tiny_bundle.artifacts))
    expected = model.booster_.inplace_predict(rows, validate_features=False)
    assert got.shape == (rows.shape[0],)
    np.testing.assert_array_equal(got, expected)  # exact: %.9g round-trips float32


def test_json_windows_give_the_scaled_lstm_outputs(
    hosted: HostedModel, tiny_bundle: TinyBundle
) -> None:
    model, batch = lstm_batch(tiny_bundle)
    doc = {"instances": batch.x_enc.tolist(), "future": batch.x_fut.tolist()}
    decoded = input_fn(json.dumps(doc), "application/json")
    body = output_fn(predict_fn(decoded, hosted), "application/json")
    got = np.asarray(json.loads(body)["predictions"], dtype=np.float32)
    np.testing.assert_array_equal(got, model.predict_scaled(batch.x_enc, batch.x_fut))
    assert got.shape == (batch.x_enc.shape[0], 16)


def test_inputs_key_is_accepted_for_instances(hosted: HostedModel, tiny_bundle: TinyBundle) -> None:
    _, batch = lstm_batch(tiny_bundle)
    doc = {"inputs": batch.x_enc[:2].tolist(), "future": batch.x_fut[:2].tolist()}
    decoded = input_fn(json.dumps(doc).encode(), "application/json")
    assert isinstance(decoded, LSTMBatch)
    assert predict_fn(decoded, hosted).shape == (2, 16)


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"1,2,3\n", "text/csv", "columns"),
        (b"a,b\n", "text/csv", "not numeric"),
        (b"", "text/csv", "no rows"),
        (b"{not json", "application/json", "does not parse"),
        (b'{"instances": [[1, 2]], "future": [[[1]]]}', "application/json", "3-D"),
        (b'{"future": []}', "application/json", "instances"),
        (b'{"instances": [[[1]]], "future": [[[1]]]}', "application/json", "x_enc must be"),
        (b"[1, 2]", "application/json", "must be"),
    ],
)
def test_bad_requests_raise_a_clear_value_error(
    hosted: HostedModel, body: bytes, content_type: str, message: str
) -> None:
    with pytest.raises(HandlerInputError, match=message) as info:
        predict_fn(input_fn(body, content_type), hosted)
    assert isinstance(info.value, ValueError)


def test_unknown_media_types_are_refused(hosted: HostedModel) -> None:
    with pytest.raises(UnsupportedMediaError):
        input_fn(b"1", "application/x-npy")
    with pytest.raises(UnsupportedMediaError):
        output_fn(np.zeros(3, dtype=np.float32), "application/xml")


def test_a_bundle_without_xgboost_refuses_csv(tiny_bundle: TinyBundle, tmp_path: Path) -> None:
    hosted = model_fn(lstm_only_bundle(tiny_bundle, tmp_path / "lstm-only"))
    assert hosted.booster is None
    assert hosted.lstm is not None
    with pytest.raises(HandlerInputError, match="has no XGBoost model"):
        predict_fn(input_fn(b"1,2\n", "text/csv"), hosted)


def test_container_contract_ping_and_invocations(tiny_bundle: TinyBundle) -> None:
    rows = feature_rows(tiny_bundle)
    app = create_container_app(tiny_bundle.artifacts)
    with TestClient(app) as client:
        assert client.get("/ping").status_code == 200
        ok = client.post(
            "/invocations", content=csv_body(rows), headers={"content-type": "text/csv"}
        )
        assert ok.status_code == 200
        assert ok.headers["content-type"].startswith("text/csv")
        assert len(ok.text.split()) == rows.shape[0]
        bad = client.post("/invocations", content=b"1,2\n", headers={"content-type": "text/csv"})
        assert bad.status_code == 400
        assert "columns" in bad.text
        media = client.post("/invocations", content=b"x", headers={"content-type": "image/png"})
        assert media.status_code == 415
        # the runtime's InvokeEndpoint path is AWS's, not the container's (the stand-in's only)
        runtime = client.post(
            "/endpoints/xgb/invocations",
            content=csv_body(rows),
            headers={"content-type": "text/csv"},
        )
        assert runtime.status_code == 404


def test_runtime_path_maps_model_failures_to_model_error(tiny_bundle: TinyBundle) -> None:
    app = create_runtime_app(tiny_bundle.artifacts, endpoints={"xgb": tiny_bundle.artifacts})
    with TestClient(app) as client:
        bad = client.post(
            "/endpoints/xgb/invocations", content=b"1,2\n", headers={"content-type": "text/csv"}
        )
        assert bad.status_code == 424
        assert bad.headers["x-amzn-errortype"] == "ModelError"
        doc = bad.json()
        assert doc["OriginalStatusCode"] == 400
        assert "columns" in doc["OriginalMessage"]
        missing = client.post("/endpoints/nope/invocations", content=b"1\n")
        assert missing.status_code == 400
        assert missing.json()["__type"] == "ValidationError"
