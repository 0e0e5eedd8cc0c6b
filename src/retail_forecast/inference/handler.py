"""SageMaker hosting handler: ``model_fn / input_fn / predict_fn / output_fn`` over a bundle.

Wire formats (what :mod:`retail_forecast.inference.sagemaker` sends and reads back):

``text/csv`` -> XGBoost
    One feature row per line, no header, columns in the bundle's feature order
    (``preprocessor_xgboost.json`` ``builder.feature_names``). ``store_nbr`` and ``family`` are
    their category CODES: the position in ``builder.categories.store_nbr`` / ``.family`` (sorted
    vocabularies), as floats, exactly what ``FeatureBuilder.encode`` puts in the matrix. ``nan``
    (or an empty field) is a missing value. Values are float32 written with 9 significant digits, so
    they parse back bit-exactly. The answer is one prediction per line: the RAW booster output
    (log1p sales, float32 as ``%.9g``); the client applies expm1, the dead-series and
    closed-day rules and the blend.

``application/json`` -> LSTM
    ``{"instances": x_enc, "future": x_fut}`` (``"inputs"`` is accepted for ``"instances"``):
    ``x_enc`` is the 3-D encoder tensor ``[batch, window, len(ENCODER_FEATURES)]`` and ``x_fut``
    the future covariates ``[batch, 16, len(FUTURE_FEATURES)]`` from
    ``LSTMForecaster.build_inputs``. The answer is ``{"predictions": [batch][16]}``: SCALED
    outputs (``(log1p(sales) - mean) / std`` per series); the client unscales them.

Any problem with a request raises :class:`HandlerInputError` (a ``ValueError``); the container
(:mod:`retail_forecast.inference.container`, run by ``serve-sagemaker``) answers it with 4xx,
which SageMaker's runtime turns into ``ModelError``.
"""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
import xgboost as xgb

from retail_forecast.artifacts import CURRENT, MANIFEST, ModelBundle
from retail_forecast.errors import ArtifactError, DataValidationError
from retail_forecast.models.lstm import PREPROCESSOR_FILE as NN_PREPROCESSOR
from retail_forecast.models.lstm import WEIGHTS_FILE, LSTMForecaster
from retail_forecast.models.xgboost import MODEL_FILE, PREPROCESSOR_FILE

logger = logging.getLogger(__name__)

CSV: Final = "text/csv"
JSON: Final = "application/json"
CSV_FORMAT: Final = "%.9g"  # 9 significant digits: every float32 round-trips exactly
F32Array = npt.NDArray[np.float32]


class HandlerInputError(ValueError):
    """A request the model cannot answer (the container replies 4xx: SageMaker ModelError)."""


class UnsupportedMediaError(HandlerInputError):
    """Content type or accept type the handler does not speak (415 / 406)."""


@dataclass(frozen=True)
class HostedModel:
    """What ``model_fn`` loaded: the booster and/or the LSTM, whichever the bundle holds."""

    version: str
    booster: xgb.Booster | None
    feature_names: tuple[str, ...]
    lstm: LSTMForecaster | None


@dataclass(frozen=True)
class LSTMBatch:
    """A decoded ``application/json`` request."""

    x_enc: F32Array
    x_fut: F32Array


def _open_bundle(model_dir: Path) -> ModelBundle:
    """Open a bundle directory itself, or an artifacts root with a ``current`` pointer."""
    if (model_dir / MANIFEST).is_file():
        return ModelBundle.open(model_dir)
    if (model_dir / CURRENT).is_file():
        return ModelBundle.open_current(model_dir)
    raise ArtifactError(f"{model_dir}: neither a bundle ({MANIFEST}) nor a root with {CURRENT}")


def model_fn(model_dir: str | Path) -> HostedModel:
    """Verify the bundle in ``model_dir`` and load the models it holds (no pickle)."""
    bundle = _open_bundle(Path(model_dir))
    booster: xgb.Booster | None = None
    names: tuple[str, ...] = ()
    if bundle.has(MODEL_FILE.as_posix()):
        prep = bundle.read_json(PREPROCESSOR_FILE.as_posix())
        names = tuple(str(n) for n in prep["builder"]["feature_names"])
        booster = xgb.Booster()
        booster.load_model(bytearray(bundle.read_bytes(MODEL_FILE.as_posix())))
        booster.set_param({"nthread": 1})  # docs/DESIGN.md, section 5: concurrency from workers
    lstm = None
    if bundle.has(WEIGHTS_FILE) and bundle.has(NN_PREPROCESSOR):
        lstm = LSTMForecaster.load(bundle.path)
    if booster is None and lstm is None:
        raise ArtifactError(f"{bundle.path}: the bundle holds neither an XGBoost nor an LSTM model")
    logger.info(
        "hosted model loaded version=%s xgboost=%s lstm=%s",
        bundle.version,
        booster is not None,
        lstm is not None,
    )
    return HostedModel(bundle.version, booster, names, lstm)


def media_type(header: str | None) -> str:
    """``"text/csv; charset=utf-8"`` -> ``"text/csv"``."""
    return (header or "").split(";", 1)[0].strip().lower()


def input_fn(request_body: bytes | str, request_content_type: str | None) -> F32Array | LSTMBatch:
    """Decode a request body: csv -> a float32 feature matrix, json -> an :class:`LSTMBatch`."""
    body = request_body.encode() if isinstance(request_body, str) else bytes(request_body)
    kind = media_type(request_content_type)
    if kind == CSV:
        return _read_csv(body)
    if kind == JSON:
        return _read_json(body)
    raise UnsupportedMediaError(f"content type {kind or 'none'!r} is not {CSV} or {JSON}")


def _read_csv(body: bytes) -> F32Array:
    if not body.strip():
        raise HandlerInputError("the csv body has no rows")
    try:
        frame = pd.read_csv(io.BytesIO(body), header=None, dtype=np.float64, engine="c")
    except (ValueError, UnicodeDecodeError) as exc:
        raise HandlerInputError(f"the csv body is not numeric rows: {str(exc)[:200]}") from None
    return frame.to_numpy(dtype=np.float32)


def _tensor(doc: dict[str, Any], key: str) -> F32Array:
    try:
        array = np.asarray(doc[key], dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise HandlerInputError(f"{key!r} is not a numeric tensor: {str(exc)[:200]}") from None
    if array.ndim != 3:
        raise HandlerInputError(f"{key!r} must be 3-D [batch, time, feature], got {array.ndim}-D")
    return array


def _read_json(body: bytes) -> LSTMBatch:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HandlerInputError(f"the json body does not parse: {str(exc)[:200]}") from None
    if not isinstance(doc, dict):
        raise HandlerInputError('the json body must be {"instances": [...], "future": [...]}')
    key = "instances" if "instances" in doc else "inputs"
    if key not in doc or "future" not in doc:
        raise HandlerInputError('the json body needs "instances" (or "inputs") and "future"')
    return LSTMBatch(_tensor(doc, key), _tensor(doc, "future"))


def predict_fn(input_data: F32Array | LSTMBatch, model: HostedModel) -> F32Array:
    """Booster output (log1p) per csv row, or scaled LSTM outputs ``[batch, 16]``."""
    if isinstance(input_data, LSTMBatch):
        if model.lstm is None:
            raise HandlerInputError(f"bundle {model.version} has no LSTM: send {CSV} rows")
        try:
            return model.lstm.predict_scaled(input_data.x_enc, input_data.x_fut)
        except DataValidationError as exc:
            raise HandlerInputError(str(exc)) from None
    if model.booster is None:
        raise HandlerInputError(f"bundle {model.version} has no XGBoost model: send {JSON}")
    if input_data.ndim != 2 or input_data.shape[1] != len(model.feature_names):
        raise HandlerInputError(
            f"csv rows need {len(model.feature_names)} columns "
            f"({', '.join(model.feature_names)}), got {input_data.shape[-1]}"
        )
    pred = model.booster.inplace_predict(input_data, validate_features=False)
    return np.asarray(pred, dtype=np.float32).reshape(-1)


def response_type(prediction: F32Array, accept: str | None) -> str:
    """Choose what ``output_fn`` writes: the accept type, else csv for 1-D, json for 2-D."""
    kind = media_type(accept)
    if kind in {"", "*/*"}:
        return CSV if prediction.ndim == 1 else JSON
    if kind not in {CSV, JSON}:
        raise UnsupportedMediaError(f"accept {kind!r} is not {CSV} or {JSON}")
    if kind == CSV and prediction.ndim != 1:
        raise UnsupportedMediaError(f"LSTM outputs are 2-D: accept {JSON}")
    return kind


def output_fn(prediction: F32Array, accept: str | None) -> bytes:
    """Serialize: csv -> one value per line (``%.9g``), json -> ``{"predictions": [...]}``."""
    kind = response_type(prediction, accept)
    if kind == CSV:
        lines = [CSV_FORMAT % value for value in prediction.astype(np.float64)]
        return ("\n".join(lines) + "\n").encode("ascii")
    # float32 -> Python float is exact, and json writes the shortest repr that parses back.
    return json.dumps({"predictions": prediction.tolist()}, allow_nan=False).encode("ascii")
