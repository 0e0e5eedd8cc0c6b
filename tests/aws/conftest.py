"""A real S3-compatible server (moto's threaded server) on 127.0.0.1, and S3 clients for it."""

from __future__ import annotations

import datetime as dt
import logging
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from botocore.awsrequest import AWSRequest, AWSResponse, HTTPHeaders
from moto.server import ThreadedMotoServer

from retail_forecast.artifacts import BundleWriter
from retail_forecast.aws.env import AwsEnvSettings, make_s3_client
from retail_forecast.config import AwsConfig

FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """Moto's S3 server on 127.0.0.1:<free port>, one per session; dummy credentials in env."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with pytest.MonkeyPatch.context() as mp:
        for name, value in FAKE_ENV.items():
            mp.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN"):
            mp.delenv(name, raising=False)
        port = _free_port()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.stop()


@pytest.fixture
def aws_config(s3_endpoint: str) -> AwsConfig:
    return AwsConfig(endpoint_url=s3_endpoint, connect_timeout_s=2.0, read_timeout_s=10.0)


@pytest.fixture
def no_dotenv(monkeypatch: pytest.MonkeyPatch) -> AwsEnvSettings:
    """Plain AWS settings from the test environment only (a developer's .env is ignored)."""
    for name, value in FAKE_ENV.items():
        monkeypatch.setenv(name, value)
    return AwsEnvSettings(_env_file=None)  # type: ignore[call-arg]


@pytest.fixture
def s3(aws_config: AwsConfig, no_dotenv: AwsEnvSettings) -> Any:
    """A fresh client (so event hooks stay per test) built by our factory."""
    return make_s3_client(aws_config, no_dotenv)


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"rf-test-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def write_bundle(root: Path, *, fingerprint: str = "1a2b3c4d" * 8, seed: int = 0) -> Path:
    """A small real bundle: an XGBoost booster, JSON preprocessors and a parquet profile."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(64, 3))
    target = features @ np.array([1.0, -2.0, 0.5]) + rng.normal(scale=0.1, size=64)
    booster = xgb.train(
        {"max_depth": 2, "nthread": 1, "seed": seed}, xgb.DMatrix(features, target), 5
    )
    created = dt.datetime(2026, 11, 26, 20, 30, tzinfo=dt.UTC)
    with BundleWriter(
        root,
        fingerprint=fingerprint,
        metadata={"horizon": 16, "feature_names": ["a", "b", "c"]},
        config={"xgboost": {"max_depth": 2}},
        metrics={"rmsle": 0.5},
        created_at=created,
    ) as writer:
        (writer.directory / "xgboost").mkdir()
        booster.save_model(writer.directory / "xgboost" / "model.ubj")
        writer.write_json("preprocessor_xgboost.json", {"features": ["a", "b", "c"], "seed": seed})
        pd.DataFrame({"a": features[:, 0], "b": features[:, 1]}).to_parquet(
            writer.directory / "reference.parquet", index=False
        )
    assert writer.path is not None
    return writer.path


class _RawBody:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


def s3_error_response(request: AWSRequest, status: int, code: str) -> AWSResponse:
    """An S3-style XML error response, as a before-send hook returns it."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Error><Code>{code}</Code><Message>injected {code}</Message>"
        "<RequestId>injected</RequestId></Error>"
    ).encode()
    headers = HTTPHeaders()
    headers["Content-Type"] = "application/xml"
    headers["Content-Length"] = str(len(body))
    return AWSResponse(request.url, status, headers, _RawBody(body))


@dataclass
class SendRecorder:
    """before-send hook: records (method, path, headers) of every request; may inject errors."""

    sends: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    inject: Callable[[AWSRequest, int], AWSResponse | None] | None = None

    def __call__(self, request: AWSRequest, **_: Any) -> AWSResponse | None:
        path = request.url.split("://", 1)[1].split("/", 1)[1].split("?", 1)[0]
        headers = {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
        self.sends.append((request.method, "/" + path, headers))
        if self.inject is not None:
            return self.inject(request, len(self.sends))
        return None

    def puts(self) -> list[str]:
        return [path for method, path, _ in self.sends if method == "PUT"]


@pytest.fixture
def recorder(s3: Any) -> SendRecorder:
    rec = SendRecorder()
    s3.meta.events.register("before-send.s3", rec)
    return rec


@pytest.fixture
def bundle_factory() -> Callable[..., Path]:
    """``write_bundle(root, fingerprint=..., seed=...)`` -> published bundle directory."""
    return write_bundle


@pytest.fixture
def error_response() -> Callable[[AWSRequest, int, str], AWSResponse]:
    return s3_error_response
