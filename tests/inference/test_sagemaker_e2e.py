"""SageMaker backend end to end: API -> boto3 sagemaker-runtime -> HTTP -> handler -> bundle.

The endpoint is the runtime stand-in (``sagemaker_runtime_server``: uvicorn on 127.0.0.1)
answering the path boto3's InvokeEndpoint calls with our container's handler; nothing of ours is
mocked. Promises 28 and 29 are also checked with
botocore's Stubber against the real sagemaker-runtime service model.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from bundle_helpers import TinyBundle
from fastapi.testclient import TestClient
from sagemaker_helpers import blended_bundle, lstm_only_bundle, runtime_server
from sagemaker_runtime_server import RuntimeState

from retail_forecast.app import create_app
from retail_forecast.aws.env import AwsEnvSettings
from retail_forecast.config import AwsConfig, Settings
from retail_forecast.errors import ConfigError, RemoteModelError, RemoteUnavailableError
from retail_forecast.inference.local import LocalPredictor
from retail_forecast.inference.sagemaker import SageMakerPredictor, resolve_backend
from retail_forecast.inference.sagemaker_runtime import (
    EndpointInvoker,
    RetryPolicy,
    chunk_ranges,
    make_runtime_client,
)

FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}
XGB, LSTM, BROKEN = "rf-xgboost", "rf-lstm", "rf-lstm-only"


@pytest.fixture(autouse=True)
def fake_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in FAKE_ENV.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def endpoint(
    tiny_bundle: TinyBundle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, RuntimeState]]:
    broken = lstm_only_bundle(tiny_bundle, tmp_path_factory.mktemp("lstm-only"))
    endpoints = {XGB: tiny_bundle.artifacts, LSTM: tiny_bundle.artifacts, BROKEN: broken}
    with runtime_server(tiny_bundle.artifacts, endpoints) as served:
        yield served


@pytest.fixture(scope="module")
def blended(tiny_bundle: TinyBundle, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return blended_bundle(tiny_bundle, tmp_path_factory.mktemp("blended"))


def sm_settings(tiny: TinyBundle, history: Path, url: str, root: Path, **aws: Any) -> Settings:
    base = tiny.settings(history, artifacts=root)
    config = AwsConfig(
        runtime_endpoint_url=url,
        xgboost_endpoint_name=XGB,
        lstm_endpoint_name=LSTM,
        read_timeout_s=20.0,
        **aws,
    )
    return base.model_copy(update={"aws": config})


def rows_json(tiny: TinyBundle) -> list[dict[str, Any]]:
    rows = tiny.test.drop(columns="id").copy()
    rows["date"] = rows["date"].dt.strftime("%Y-%m-%d")
    rows["family"] = rows["family"].astype(str)
    return rows.to_dict("records")  # type: ignore[return-value]


def wait_ready(client: TestClient) -> None:
    deadline = time.monotonic() + 60
    while client.get("/ready").json().get("status") == "loading":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert client.get("/ready").status_code == 200, client.get("/ready").text


def api_predictions(settings: Settings, rows: list[dict[str, Any]]) -> pd.DataFrame:
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        response = client.post("/api/v1/predict", json={"rows": rows})
        assert response.status_code == 200, response.text
        return pd.DataFrame(response.json()["predictions"])


def test_backend_is_chosen_by_the_plain_env_name(
    tiny_bundle: TinyBundle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = tiny_bundle.settings(tmp_path)
    monkeypatch.setenv("PREDICTOR_BACKEND", "sagemaker")
    assert resolve_backend(settings) == "sagemaker"
    monkeypatch.setenv("PREDICTOR_BACKEND", "cloud")
    with pytest.raises(ConfigError, match="PREDICTOR_BACKEND"):
        resolve_backend(settings)
    monkeypatch.setenv("RF_API__PREDICTOR_BACKEND", "local")
    assert resolve_backend(Settings(_env_file=None)) == "local"  # type: ignore[call-arg]


@pytest.mark.integration
def test_sagemaker_backend_equals_the_local_backend(
    tiny_bundle: TinyBundle,
    endpoint: tuple[str, RuntimeState],
    blended: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, _ = endpoint
    rows = rows_json(tiny_bundle)
    local = api_predictions(tiny_bundle.settings(tmp_path / "local", artifacts=blended), rows)
    monkeypatch.setenv("PREDICTOR_BACKEND", "sagemaker")
    remote = api_predictions(sm_settings(tiny_bundle, tmp_path / "remote", url, blended), rows)
    assert len(remote) == len(rows) == 16 * 12
    assert remote["model"].tolist() == local["model"].tolist()
    assert "hybrid" in set(remote["model"])  # both endpoints contributed
    assert (remote["sales"] > 0).any()
    np.testing.assert_allclose(remote["sales"], local["sales"], rtol=1e-6, atol=0)


@pytest.mark.integration
def test_model_error_becomes_502_with_the_endpoint_message(
    tiny_bundle: TinyBundle,
    endpoint: tuple[str, RuntimeState],
    blended: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, state = endpoint
    monkeypatch.setenv("PREDICTOR_BACKEND", "sagemaker")
    settings = sm_settings(tiny_bundle, tmp_path, url, blended)
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        # the endpoint is updated to a model that cannot read XGBoost rows
        monkeypatch.setitem(state.by_name, XGB, state.by_name[BROKEN])
        response = client.post("/api/v1/predict", json={"rows": rows_json(tiny_bundle)[:3]})
    assert response.status_code == 502, response.text
    body = response.json()
    assert body["error"] == "bad_gateway"
    assert body["request_id"]
    assert "has no XGBoost model" in body["message"]
    assert XGB in body["message"]


@pytest.mark.integration
def test_oversized_batches_are_chunked_in_order(
    tiny_bundle: TinyBundle, endpoint: tuple[str, RuntimeState], blended: Path, tmp_path: Path
) -> None:
    url, _ = endpoint
    budget = 12_000
    settings = sm_settings(tiny_bundle, tmp_path, url, blended, invoke_max_body_bytes=budget)
    aws = settings.aws
    client = make_runtime_client(aws, AwsEnvSettings(_env_file=None))  # type: ignore[call-arg]
    sent: list[tuple[str, int]] = []

    def record(request: Any, **_: Any) -> None:
        sent.append((request.headers["Content-Type"].decode(), len(request.body)))

    client.meta.events.register("before-send.sagemaker-runtime.InvokeEndpoint", record)
    predictor = SageMakerPredictor.load(settings, client=client)
    rows = tiny_bundle.test.drop(columns="id").sample(frac=1.0, random_state=1)
    out = predictor.predict(rows)
    predictor.close()
    local = LocalPredictor.load(tiny_bundle.settings(tmp_path / "local", artifacts=blended))
    expected = local.predict(rows)
    local.close()
    json_calls = [size for kind, size in sent if kind == "application/json"]
    csv_calls = [size for kind, size in sent if kind == "text/csv"]
    assert len(json_calls) > 1  # 12 series do not fit one body
    assert len(csv_calls) >= 16  # one round trip (or more) per horizon day
    assert max(size for _, size in sent) <= budget
    assert out.index.tolist() == rows.index.tolist()
    np.testing.assert_allclose(out["sales"], expected["sales"], rtol=1e-6)


# --- Stubber: promises 28 and 29 --------------------------------------------------------------


def stub_invoker(**policy: Any) -> tuple[EndpointInvoker, Stubber, list[float]]:
    client = make_runtime_client(AwsConfig(), AwsEnvSettings(_env_file=None))  # type: ignore[call-arg]
    slept: list[float] = []

    def clock() -> float:  # time passes only while the invoker sleeps
        return sum(slept)

    invoker = EndpointInvoker(
        client,
        max_body_bytes=256 * 1024,
        policy=RetryPolicy(**policy),
        sleep=slept.append,
        clock=clock,
    )
    return invoker, Stubber(client), slept


def body(data: bytes) -> dict[str, Any]:
    return {"Body": StreamingBody(io.BytesIO(data), len(data)), "ContentType": "text/csv"}


def test_p28_1e5_rows_are_chunked_under_the_budget_in_order() -> None:
    invoker, stubber, _ = stub_invoker()
    n = 100_000
    x = np.ones((n, 3), dtype=np.float32)
    x[:, 0] = 100_000 + np.arange(n)  # every line "1xxxxx,1,1\n": 11 bytes
    per_call = invoker.max_body_bytes // 11
    k = -(-n // per_call)
    for c in range(k):
        ids = np.arange(c * per_call, min(n, (c + 1) * per_call))
        request = b"".join(b"%d,1,1\n" % (100_000 + i) for i in ids)
        assert len(request) <= invoker.max_body_bytes
        reply = "\n".join(str(i) for i in ids).encode()
        params = {
            "EndpointName": "ep",
            "Body": request,
            "ContentType": "text/csv",
            "Accept": "text/csv",
        }
        stubber.add_response("invoke_endpoint", body(reply), params)
    with stubber:
        out = invoker.predict_rows("ep", x)
    stubber.assert_no_pending_responses()
    assert k > 1
    np.testing.assert_array_equal(out, np.arange(n, dtype=np.float32))


def test_p28_chunk_ranges_cover_everything_in_order() -> None:
    sizes = [5, 5, 5, 9, 1, 1, 10]
    ranges = chunk_ranges(sizes, budget=12, overhead=2)
    assert [list(r) for r in ranges] == [[0, 1], [2], [3, 4], [5], [6]]
    assert all(sum(sizes[i] for i in r) + 2 <= 12 for r in ranges)
    with pytest.raises(ConfigError):
        chunk_ranges([20], budget=12)


@pytest.mark.parametrize("status", [400, 500])
def test_p29_model_error_is_never_retried(status: int, caplog: pytest.LogCaptureFixture) -> None:
    invoker, stubber, slept = stub_invoker()
    stubber.add_client_error(
        "invoke_endpoint",
        service_error_code="ModelError",
        service_message="Received client error",
        http_status_code=424,
        modeled_fields={
            "OriginalStatusCode": status,
            "OriginalMessage": f"boom {status}",
            "LogStreamArn": "arn:aws:logs:us-east-1:1:log-group:x",
        },
    )
    with stubber, pytest.raises(RemoteModelError, match=f"model error {status}: boom {status}"):
        invoker.invoke("ep", b"1\n", content_type="text/csv", accept="text/csv")
    stubber.assert_no_pending_responses()  # exactly one call was made
    assert slept == []
    assert "LogStreamArn=arn:aws:logs" in caplog.text


def test_p29_validation_error_is_not_retried() -> None:
    invoker, stubber, slept = stub_invoker()
    stubber.add_client_error(
        "invoke_endpoint", service_error_code="ValidationError", http_status_code=400
    )
    with stubber, pytest.raises(RemoteModelError, match="ValidationError"):
        invoker.invoke("ep", b"1\n", content_type="text/csv", accept="text/csv")
    stubber.assert_no_pending_responses()
    assert slept == []


@pytest.mark.parametrize("code", ["ThrottlingException", "ServiceUnavailable", "InternalFailure"])
def test_p29_throttling_then_success_is_ok(code: str) -> None:
    invoker, stubber, slept = stub_invoker()
    stubber.add_client_error("invoke_endpoint", service_error_code=code, http_status_code=503)
    stubber.add_response("invoke_endpoint", body(b"0.5\n"))
    with stubber:
        raw = invoker.invoke("ep", b"1\n", content_type="text/csv", accept="text/csv")
    assert raw == b"0.5\n"
    assert len(slept) == 1
    assert 0 < slept[0] <= 0.1


def test_p29_not_ready_waits_are_bounded() -> None:
    invoker, stubber, slept = stub_invoker(max_attempts=3, not_ready_delay_s=0.5)
    for _ in range(3):
        stubber.add_client_error(
            "invoke_endpoint", service_error_code="ModelNotReadyException", http_status_code=429
        )
    with stubber, pytest.raises(RemoteUnavailableError, match="ModelNotReadyException"):
        invoker.invoke("ep", b"1\n", content_type="text/csv", accept="text/csv")
    stubber.assert_no_pending_responses()
    assert slept == [0.5, 0.5]


def test_p29_retries_stop_at_the_time_budget() -> None:
    invoker, stubber, slept = stub_invoker(max_attempts=10, not_ready_delay_s=0.6, budget_s=1.0)
    for _ in range(2):
        stubber.add_client_error(
            "invoke_endpoint", service_error_code="ModelNotReadyException", http_status_code=429
        )
    with stubber, pytest.raises(RemoteUnavailableError, match="after 2 attempt"):
        invoker.invoke("ep", b"1\n", content_type="text/csv", accept="text/csv")
    stubber.assert_no_pending_responses()
    assert slept == [0.6]  # a second wait would end past the 1 s budget
