"""Forecast Kaggle's test.csv through the serving code and write the submission (``id,sales``).

The history is the data directory's own sales (the test window starts the day after its last
day), the model is the verified ``<artifacts>/current`` bundle, and the rows go through the
same :class:`~retail_forecast.inference.local.LocalPredictor` code path the API uses.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from retail_forecast.artifacts import ModelBundle
from retail_forecast.config import Settings
from retail_forecast.data_processing.dataset import build_dataset
from retail_forecast.errors import DataValidationError, MissingInputError
from retail_forecast.inference.local import LocalPredictor
from retail_forecast.inference.postprocess import MODEL, checked_frame, submission
from retail_forecast.schema import DATE, ID, TARGET
from retail_forecast.utils.io import write_bytes_atomic

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchForecast:
    """The forecast rows (test.csv plus ``sales`` and ``model``) and where they came from."""

    rows: pd.DataFrame
    model_version: str
    history_end: pd.Timestamp


def forecast_test(
    data_dir: str | Path, settings: Settings, *, artifacts: Path | None = None
) -> BatchForecast:
    """Forecast every row of ``data_dir``'s test.csv from its sales with the current bundle.

    test.csv may cover the bundle's horizon (what it was trained for), not the settings'.
    """
    bundle = ModelBundle.open_current(artifacts or settings.artifacts_dir)
    predictor = LocalPredictor.from_bundle(bundle, xgboost_threads=settings.api.xgboost_threads)
    built = build_dataset(data_dir, settings.data, horizon=predictor.domain.horizon)
    if built.test is None or built.test.empty:
        raise MissingInputError(f"{data_dir}: no test.csv rows to forecast")
    if ID not in built.test.columns:
        raise DataValidationError(f"{data_dir}: test.csv has no id column")
    end = pd.Timestamp(built.sales[DATE].max())
    rows = predictor.predict_from(built.sales, built.test)
    rows[TARGET], rows[MODEL] = checked_frame(rows, len(rows))
    logger.info(
        "batch forecast rows=%d version=%s history_end=%s", len(rows), bundle.version, end.date()
    )
    return BatchForecast(rows=rows, model_version=bundle.version, history_end=end)


def write_submission(rows: pd.DataFrame, out: Path) -> Path:
    """Write ``id,sales`` atomically (full float precision: the file equals the served values)."""
    frame = submission(rows).sort_values(ID, kind="stable")
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, columns=[ID, TARGET])
    write_bytes_atomic(Path(out), buffer.getvalue().encode())
    return Path(out)
