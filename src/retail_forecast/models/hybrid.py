"""HybridForecaster: XGBoost and LSTM blended in log space with learned per-family weights."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Self

import numpy as np
import numpy.typing as npt
import pandas as pd

from retail_forecast.closed_days import closed_rows
from retail_forecast.errors import ArtifactError
from retail_forecast.features.builder import Panel, panel_from_frame, silent_series
from retail_forecast.features.keys import family_names, series_keys
from retail_forecast.models.blend import BlendWeights
from retail_forecast.models.lstm import LOG_SALES_MAX, LSTMForecaster
from retail_forecast.models.xgboost import XGBForecaster
from retail_forecast.schema import DATE, FAMILY, TARGET

logger = logging.getLogger(__name__)

MODEL = "model"
BLEND_KEY = "blend_weights"
FloatArray = npt.NDArray[np.float64]


def dead_series_mask(
    history: pd.DataFrame | Panel, future: pd.DataFrame, *, days: int
) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """Per future row: its series sold nothing on the open days among ``history``'s last ``days``.

    :func:`silent_series`: a series closed on all of them (a refurbishment) is not judged.
    """
    if days == 0:
        return np.zeros(len(future), dtype=np.bool_)
    if not isinstance(history, Panel):
        origin = history[DATE].max()
        history = panel_from_frame(history[history[DATE] > origin - pd.Timedelta(days=days)])
    vocabulary = sorted(set(family_names(history.keys)) | set(family_names(future)))
    dead = silent_series(history.sales[:, -days:], history.closed[:, -days:])
    return np.isin(series_keys(future, vocabulary), series_keys(history.keys, vocabulary)[dead])


class HybridForecaster:
    """Both models predict; the blend is ``w * log1p(xgb) + (1 - w) * log1p(lstm)`` per family.

    ``predict`` adds a ``model`` column: ``hybrid`` where both contribute, the single model's
    name where a weight is 0 or 1, and ``zero_rule`` for series the dead-series rule zeroed.
    """

    def __init__(self, xgboost: XGBForecaster, lstm: LSTMForecaster, weights: BlendWeights) -> None:
        if xgboost.horizon != lstm.horizon:
            raise ArtifactError(
                f"the models' horizons differ: xgboost {xgboost.horizon}, lstm {lstm.horizon}"
            )
        self.horizon = xgboost.horizon
        self.xgboost = xgboost
        self.lstm = lstm
        self.weights = weights

    def fit(self, history: pd.DataFrame) -> Self:
        self.xgboost.fit(history)
        self.lstm.fit(history)
        return self

    def predict(self, history: pd.DataFrame | Panel, future: pd.DataFrame) -> pd.DataFrame:
        """Forecast ``future`` from a canonical frame or the same history as a :class:`Panel`.

        A panel (what serving builds from its history store) skips re-shaping the frame; the
        LSTM, when its weight is not 0, reads the panel's frame (same values).
        """
        sales, labels = self.forecast(history, future)
        out = future.copy()
        out[TARGET] = sales
        out[MODEL] = labels
        return out

    def forecast(
        self, history: pd.DataFrame | Panel, future: pd.DataFrame
    ) -> tuple[FloatArray, npt.NDArray[Any]]:
        """Return the ``sales`` and ``model`` columns :meth:`predict` adds (no frame built)."""
        weight = self.weights.weights_for(future[FAMILY])
        log_x = np.zeros(len(future))
        log_l = np.zeros(len(future))
        if (weight > 0).any():
            xgb = (
                self.xgboost.panel_sales(history, future)
                if isinstance(history, Panel)
                else self.xgboost.predict(history, future)[TARGET].to_numpy(np.float64)
            )
            log_x = np.log1p(xgb)
        if (weight < 1).any():
            frame = history.to_frame() if isinstance(history, Panel) else history
            log_l = np.log1p(self.lstm.predict(frame, future)[TARGET].to_numpy(np.float64))
        log_sales = np.minimum(weight * log_x + (1.0 - weight) * log_l, LOG_SALES_MAX)
        sales = np.clip(np.expm1(log_sales), 0.0, None)  # capped: never inf (models/lstm.py)
        labels = self.weights.labels_for(weight)
        dead = dead_series_mask(history, future, days=self.xgboost.config.dead_series_days)
        closed = closed_rows(future)
        sales[dead | closed] = 0.0
        labels[dead] = "zero_rule"
        return sales, labels

    def save(self, directory: Path) -> list[Path]:
        """Write both models' files; the weights go in the manifest (see ``metadata``)."""
        return [*self.xgboost.save(directory), *self.lstm.save(directory)]

    def metadata(self) -> dict[str, Any]:
        return {BLEND_KEY: self.weights.to_dict()}

    @classmethod
    def load(cls, directory: Path, metadata: dict[str, Any]) -> Self:
        """Load from a VERIFIED bundle directory and its manifest metadata."""
        if BLEND_KEY not in metadata:
            raise ArtifactError(f"{directory}: manifest metadata has no {BLEND_KEY}")
        weights = BlendWeights.from_dict(metadata[BLEND_KEY])
        return cls(XGBForecaster.load(directory), LSTMForecaster.load(directory), weights)
