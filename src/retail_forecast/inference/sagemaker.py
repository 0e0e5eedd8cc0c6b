"""SageMakerPredictor: the Predictor protocol with model execution on SageMaker endpoints.

Everything but the two models stays local, exactly as in :class:`LocalPredictor`: the verified
bundle (its JSON preprocessors, manifest domain and ``history.parquet``), the history store,
request checks, the dead-series and closed-day rules and the blend. The forecasters are the
project's own classes with their execution swapped out:

* XGBoost: :class:`RemoteBooster` stands in for the booster inside ``XGBForecaster``, so the
  recursion is ``XGBForecaster.forecast_log`` itself: one round trip per horizon day, each
  sending the feature rows of every requested series as ``text/csv`` (float32 written with 9
  significant digits, read back bit-exactly) and reading one log1p prediction per line.
* LSTM: :class:`RemoteLSTMForecaster` overrides only ``predict_scaled``: ``x_enc`` / ``x_fut``
  from ``build_inputs`` go out as ``application/json`` 3-D tensors, scaled outputs come back.

Quantiles need no endpoint: the bundle's calibration is read locally (``calibration``) and the
API applies it to the points the endpoints produced.

So both backends give the same numbers (see tests/inference/test_sagemaker_e2e.py).

Calls, chunking, error mapping and retries: :mod:`retail_forecast.inference.sagemaker_runtime`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np
import pandas as pd
import xgboost as xgb
from pydantic_settings import BaseSettings, SettingsConfigDict

from retail_forecast.artifacts import ModelBundle
from retail_forecast.aws.env import resolve_aws_config
from retail_forecast.bundle_contents import recorded_horizon
from retail_forecast.config import AwsConfig, Settings, XGBoostConfig
from retail_forecast.errors import ArtifactError, ConfigError
from retail_forecast.features.builder import FeatureBuilder
from retail_forecast.inference.local import LocalPredictor, _open_store
from retail_forecast.inference.predictor import ServingDomain
from retail_forecast.inference.sagemaker_runtime import (
    EndpointInvoker,
    F32Array,
    RetryPolicy,
    make_runtime_client,
)
from retail_forecast.models.blend import BlendWeights
from retail_forecast.models.hybrid import BLEND_KEY, HybridForecaster
from retail_forecast.models.lstm import PREPROCESSOR_FILE as NN_PREPROCESSOR
from retail_forecast.models.lstm import LSTMForecaster
from retail_forecast.models.quantiles import QuantileCalibration
from retail_forecast.models.xgboost import FORMAT_VERSION, PREPROCESSOR_FILE, XGBForecaster
from retail_forecast.storage.plausibility import SpikeRule

if TYPE_CHECKING:
    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient

logger = logging.getLogger(__name__)


class BackendEnv(BaseSettings):
    """The plain ``PREDICTOR_BACKEND`` name (env or ``.env``) the issue uses."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    predictor_backend: str | None = None


def resolve_backend(settings: Settings, env: BackendEnv | None = None) -> str:
    """``RF_API__PREDICTOR_BACKEND`` wins, then plain ``PREDICTOR_BACKEND``, else "local"."""
    if "predictor_backend" in settings.api.model_fields_set:
        return settings.api.predictor_backend
    plain = (env if env is not None else BackendEnv()).predictor_backend
    if plain is None:
        return settings.api.predictor_backend
    if plain.strip().lower() not in {"local", "sagemaker"}:
        raise ConfigError(f"PREDICTOR_BACKEND must be 'local' or 'sagemaker', got {plain[:40]!r}")
    return plain.strip().lower()


class RemoteBooster(xgb.Booster):
    """Stands in for the booster inside ``XGBForecaster``: ``inplace_predict`` is a remote call."""

    def __init__(self, invoker: EndpointInvoker, endpoint: str) -> None:
        super().__init__()
        self.invoker = invoker
        self.endpoint = endpoint

    def inplace_predict(self, data: Any, *args: Any, **kwargs: Any) -> Any:
        return self.invoker.predict_rows(self.endpoint, np.asarray(data, dtype=np.float32))


class RemoteLSTMForecaster(LSTMForecaster):
    """An ``LSTMForecaster`` from ``preprocessor_nn.json`` alone; the net runs on an endpoint."""

    invoker: EndpointInvoker
    endpoint: str

    @classmethod
    def from_bundle(cls, bundle: ModelBundle, invoker: EndpointInvoker, endpoint: str) -> Self:
        self = cls.from_preprocessor(bundle.path_of(NN_PREPROCESSOR))
        self.invoker, self.endpoint = invoker, endpoint
        return self

    def _check_fitted(self) -> None:
        """Scalers and vocabularies were read in ``from_bundle``; there is no local net."""

    def predict_scaled(self, x_enc: F32Array, x_fut: F32Array) -> F32Array:
        return self.invoker.predict_windows(self.endpoint, x_enc, x_fut)


def remote_xgboost(bundle: ModelBundle, invoker: EndpointInvoker, endpoint: str) -> XGBForecaster:
    """Build an ``XGBForecaster`` from its preprocessor JSON with a :class:`RemoteBooster`."""
    meta = bundle.read_json(PREPROCESSOR_FILE.as_posix())
    if meta.get("format_version") != FORMAT_VERSION or meta.get("model_type") != "xgboost":
        raise ArtifactError(f"{bundle.path}: not an xgboost preprocessor v{FORMAT_VERSION}")
    builder = FeatureBuilder.from_dict(meta["builder"])
    forecaster = XGBForecaster(
        XGBoostConfig(**meta["config"]),
        builder.spec.to_config(),
        horizon=recorded_horizon(meta, source=bundle.path),
    )
    forecaster.builder_ = builder
    forecaster.origin_ = pd.Timestamp(meta["origin"])
    forecaster.booster_ = RemoteBooster(invoker, endpoint)
    return forecaster


def remote_hybrid(
    bundle: ModelBundle, invoker: EndpointInvoker, aws: AwsConfig
) -> HybridForecaster:
    """Build the bundle's hybrid with both models executed on their endpoints."""
    meta = dict(bundle.manifest.metadata)
    if BLEND_KEY not in meta:
        raise ArtifactError(f"{bundle.path}: manifest metadata has no {BLEND_KEY}")
    return HybridForecaster(
        remote_xgboost(bundle, invoker, aws.xgboost_endpoint_name),
        RemoteLSTMForecaster.from_bundle(bundle, invoker, aws.lstm_endpoint_name),
        BlendWeights.from_dict(meta[BLEND_KEY]),
    )


class SageMakerPredictor:
    """Implements :class:`~retail_forecast.inference.predictor.Predictor` over SageMaker."""

    def __init__(self, local: LocalPredictor, aws: AwsConfig) -> None:
        self.local = local
        self.aws = aws

    @classmethod
    def load(cls, settings: Settings, *, client: SageMakerRuntimeClient | None = None) -> Self:
        """Verify ``artifacts_dir/current`` locally, open its history store, wire the endpoints."""
        aws = resolve_aws_config(settings.aws)
        bundle = ModelBundle.open_current(settings.artifacts_dir)
        invoker = EndpointInvoker(
            client if client is not None else make_runtime_client(aws),
            max_body_bytes=aws.invoke_max_body_bytes,
            policy=RetryPolicy(max_attempts=aws.max_attempts + 1, budget_s=aws.invoke_budget_s),
        )
        db_path = Path(settings.api.history_dir) / f"{bundle.version}.sqlite"
        local = LocalPredictor(
            bundle, remote_hybrid(bundle, invoker, aws), _open_store(bundle, db_path)
        )
        if local.store is not None:  # RF_ACTUALS__*: the plausibility bound of actuals
            local.store.spike_rule = SpikeRule.from_config(settings.actuals)
        logger.info(
            "sagemaker predictor loaded version=%s xgboost=%s lstm=%s",
            bundle.version,
            aws.xgboost_endpoint_name,
            aws.lstm_endpoint_name,
        )
        return cls(local, aws)

    @property
    def model_version(self) -> str:
        return self.local.model_version

    @property
    def domain(self) -> ServingDomain:
        return self.local.domain

    @property
    def calibration(self) -> QuantileCalibration | None:
        """The deployed bundle's quantile calibration (read and verified locally, not remote).

        The endpoints run the point models only; the API turns their answers into quantiles
        with this calibration, exactly as for the local backend.
        """
        return self.local.calibration

    @property
    def degraded_reason(self) -> str | None:
        return self.local.degraded_reason  # a read-only history store (inference/local.py)

    def predict(self, rows: pd.DataFrame) -> pd.DataFrame:
        return self.local.predict(rows)

    def append_actuals(self, rows: pd.DataFrame) -> int:
        return self.local.append_actuals(rows)

    def describe(self) -> dict[str, Any]:
        endpoints = {"xgboost": self.aws.xgboost_endpoint_name, "lstm": self.aws.lstm_endpoint_name}
        return {**self.local.describe(), "backend": "sagemaker", "endpoints": endpoints}

    def close(self) -> None:
        self.local.close()
