"""Forecast Kaggle's test.csv through the serving code and write the submission (``id,sales``).

The history is the data directory's own sales (the test window starts the day after its last
day), the model is the verified ``<artifacts>/current`` bundle, and the rows go through the
same :class:`~retail_forecast.inference.local.LocalPredictor` code path the API uses.

A data set that declares its own closures (an ``open`` column in test.csv, or Closed holidays in
the forecast window) gets a ``closed`` column (1 on a closed day, forecast 0), as the API answers
``closed: true``; without declared closures the file stays the point-only Kaggle submission.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from retail_forecast.artifacts import ModelBundle
from retail_forecast.closed_days import closed_rows
from retail_forecast.config import Settings
from retail_forecast.data_processing.dataset import build_dataset
from retail_forecast.errors import DataValidationError, MissingInputError
from retail_forecast.inference.local import LocalPredictor
from retail_forecast.inference.postprocess import MODEL, checked_frame, submission
from retail_forecast.inference.preprocess import horizon_steps
from retail_forecast.models.quantiles import check_levels, zero_rows
from retail_forecast.models.xgboost import XGBForecaster
from retail_forecast.schema import DATE, ID, IS_CLOSED, TARGET
from retail_forecast.utils.io import write_bytes_atomic

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchForecast:
    """The forecast rows (test.csv plus ``sales``, ``model`` and any quantile columns)."""

    rows: pd.DataFrame
    model_version: str
    history_end: pd.Timestamp
    extra_columns: tuple[str, ...] = ()
    """Columns written after ``id,sales``: ``closed`` (declared closures only), then quantiles."""


CLOSED_COLUMN = "closed"


def quantile_column(level: float) -> str:
    """Name of a level's column: ``q`` and the shortest exact decimal (``q0.1``, ``q0.975``)."""
    return f"q{float(level)!r}"


def forecast_test(
    data_dir: str | Path,
    settings: Settings,
    *,
    artifacts: Path | None = None,
    quantiles: Sequence[float] = (),
    engine: Callable[[XGBForecaster], XGBForecaster] | None = None,
) -> BatchForecast:
    """Forecast every row of ``data_dir``'s test.csv from its sales with the current bundle.

    test.csv may cover the bundle's horizon (what it was trained for), not the settings'.
    ``quantiles``: levels whose columns (:func:`quantile_column`) are added from the bundle's
    calibration; 0 on closed days and zero-rule rows. ``engine`` swaps the XGBoost model
    (``--engine dask``: its recursion on a cluster, one block of series a task).
    """
    levels = check_levels(quantiles) if quantiles else ()
    bundle = ModelBundle.open_current(artifacts or settings.artifacts_dir)
    predictor = LocalPredictor.from_bundle(bundle, xgboost_threads=settings.api.xgboost_threads)
    if engine is not None:
        predictor.model.xgboost = engine(predictor.model.xgboost)
    built = build_dataset(data_dir, settings.data, horizon=predictor.domain.horizon)
    if built.test is None or built.test.empty:
        raise MissingInputError(f"{data_dir}: no test.csv rows to forecast")
    if ID not in built.test.columns:
        raise DataValidationError(f"{data_dir}: test.csv has no id column")
    end = pd.Timestamp(built.sales[DATE].max())
    rows = predictor.predict_from(built.sales, built.test)
    rows[TARGET], rows[MODEL] = checked_frame(rows, len(rows))
    closed = closed_rows(rows)
    columns = _add_quantiles(predictor, rows, end, levels, closed) if levels else ()
    if IS_CLOSED in built.test.columns:  # the data set declares closures: say which rows
        rows[CLOSED_COLUMN] = closed.astype("int64")
        columns = (CLOSED_COLUMN, *columns)
    logger.info(
        "batch forecast rows=%d version=%s history_end=%s", len(rows), bundle.version, end.date()
    )
    return BatchForecast(rows, bundle.version, end, columns)


def _add_quantiles(
    predictor: LocalPredictor,
    rows: pd.DataFrame,
    end: pd.Timestamp,
    levels: Sequence[float],
    closed: npt.NDArray[np.bool_],
) -> tuple[str, ...]:
    """Add one column per level to ``rows`` (sorted levels: the columns never cross).

    ``closed``: the rows' closures (:func:`closed_rows`), 0 at every level like the zero rule.
    """
    calibration = predictor.calibration
    if calibration is None:
        raise DataValidationError(
            f"quantiles: bundle {predictor.model_version} has no quantile calibration "
            "(trained before quantiles existed); retrain it or leave --quantiles out"
        )
    point = rows[TARGET].to_numpy()
    zero = zero_rows(point, rows[MODEL].to_numpy()) | closed
    values = calibration.quantiles(point, horizon_steps(rows, end), levels, zero=zero)
    names = tuple(quantile_column(level) for level in levels)
    for k, name in enumerate(names):
        rows[name] = values[:, k]
    return names


def write_submission(rows: pd.DataFrame, out: Path, extra_columns: Sequence[str] = ()) -> Path:
    """Write ``id,sales`` (and the ``closed`` and quantile columns after them) atomically.

    Full float precision: the file equals the served values. Without extra columns the file
    is the Kaggle submission, point forecasts only.
    """
    frame = submission(rows)
    for name in extra_columns:
        frame[name] = rows[name].to_numpy()
    frame = frame.sort_values(ID, kind="stable")
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, columns=[ID, TARGET, *extra_columns])
    write_bytes_atomic(Path(out), buffer.getvalue().encode())
    return Path(out)
