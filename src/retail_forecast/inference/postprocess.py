"""Model output into the served answer: finite sales >= 0, known model labels, request order."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from retail_forecast.errors import ForecastError
from retail_forecast.inference.predictor import MODEL_NAMES
from retail_forecast.schema import TARGET

logger = logging.getLogger(__name__)

MODEL = "model"
SERVED_MODELS = frozenset(MODEL_NAMES) - {"closed"}
FloatArray = npt.NDArray[np.float64]


def checked_output(output: pd.DataFrame, n_rows: int) -> tuple[FloatArray, npt.NDArray[Any]]:
    """Return the model output's ``sales`` (clipped at 0) and ``model`` columns, checked.

    The models already return the original scale (expm1) clipped at 0; this refuses an output
    that is not row-aligned, has a non-finite value or an unknown label, instead of serving it.
    Tiny negatives from the blend arithmetic (never below -1e-9) are clipped to 0.
    """
    if len(output) != n_rows or TARGET not in output or MODEL not in output:
        raise ForecastError(
            f"model output has {len(output)} rows / columns {list(output.columns)}, "
            f"expected {n_rows} rows with {TARGET} and {MODEL}"
        )
    sales = output[TARGET].to_numpy(dtype=np.float64, copy=True)
    if not np.isfinite(sales).all():
        raise ForecastError(
            f"model output has {int((~np.isfinite(sales)).sum())} non-finite values"
        )
    if (sales < -1e-9).any():
        raise ForecastError("model output has negative sales")
    labels = output[MODEL].astype(str).to_numpy()
    unknown = set(labels.tolist()) - SERVED_MODELS
    if unknown:
        raise ForecastError(f"model output has unknown model labels {sorted(unknown)}")
    return np.clip(sales, 0.0, None), labels


def submission(rows: pd.DataFrame) -> pd.DataFrame:
    """Kaggle submission columns ``id,sales`` from forecast rows that carry an ``id``."""
    if "id" not in rows:
        raise ForecastError("the forecast rows have no id column; a submission needs one")
    return pd.DataFrame(
        {"id": rows["id"].to_numpy(np.int64), TARGET: rows[TARGET].to_numpy(np.float64)}
    )
