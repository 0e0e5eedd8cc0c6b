"""Model output into the served answer: finite sales >= 0, known model labels, request order.

:func:`checked_frame` is the one output check, applied once by each consumer of a Predictor to
whatever it returns (the API's predict service, the batch forecast, the app's warm-up): a
Predictor is a protocol, so the check does not trust the backend.
"""

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


def checked_output(
    sales: npt.ArrayLike, labels: npt.ArrayLike, n_rows: int
) -> tuple[FloatArray, npt.NDArray[Any]]:
    """Return the model's ``sales`` (clipped at 0) and ``model`` label per row, checked.

    The models already return the original scale (expm1) clipped at 0; this refuses an output
    that is not row-aligned, has a non-finite value or an unknown label, instead of serving it.
    Tiny negatives from the blend arithmetic (never below -1e-9) are clipped to 0.
    """
    values = np.array(sales, dtype=np.float64)  # a copy: the clip below may not touch the model's
    names = np.asarray(labels).astype(str)
    if values.shape != (n_rows,) or names.shape != (n_rows,):
        raise ForecastError(
            f"model output has {values.shape} sales / {names.shape} labels, expected {n_rows} rows"
        )
    if not np.isfinite(values).all():
        raise ForecastError(
            f"model output has {int((~np.isfinite(values)).sum())} non-finite values"
        )
    if (values < -1e-9).any():
        raise ForecastError("model output has negative sales")
    unknown = set(names.tolist()) - SERVED_MODELS
    if unknown:
        raise ForecastError(f"model output has unknown model labels {sorted(unknown)}")
    return np.clip(values, 0.0, None), names


def checked_frame(out: pd.DataFrame, n_rows: int) -> tuple[FloatArray, npt.NDArray[Any]]:
    """:func:`checked_output` of a Predictor's answer: its ``sales`` and ``model`` columns."""
    missing = [name for name in (TARGET, MODEL) if name not in out.columns]
    if missing:
        raise ForecastError(f"predictor output lacks the columns {missing}")
    return checked_output(out[TARGET].to_numpy(), out[MODEL].to_numpy(), n_rows)


def submission(rows: pd.DataFrame) -> pd.DataFrame:
    """Kaggle submission columns ``id,sales`` from forecast rows that carry an ``id``."""
    if "id" not in rows:
        raise ForecastError("the forecast rows have no id column; a submission needs one")
    return pd.DataFrame(
        {"id": rows["id"].to_numpy(np.int64), TARGET: rows[TARGET].to_numpy(np.float64)}
    )
