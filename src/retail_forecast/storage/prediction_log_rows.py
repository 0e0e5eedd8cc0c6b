"""Rows for the prediction log: served forecasts and actuals validated into SQLite records.

No I/O: :class:`retail_forecast.storage.prediction_log_db.PredictionLogDB` writes what these
functions return. The column names are the log's frame columns (``log_predictions`` reads them,
``joined`` returns them).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from retail_forecast.errors import DataValidationError
from retail_forecast.schema import DATE, FAMILY, STORE, TARGET
from retail_forecast.storage.conflict_policy import CORRECTION, disagreeing_repeats
from retail_forecast.storage.corrections import REQUEST_ID
from retail_forecast.storage.plausibility import MAX_SALES

# Columns of the log's frames: ``log_predictions`` reads them, ``joined`` returns them.
PREDICTION: Final = "prediction"
ACTUAL: Final = "actual"
MODEL: Final = "model"
HORIZON_DAY: Final = "horizon_day"
ACTUAL_KEY: Final = (STORE, FAMILY, DATE)


def dates(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, errors="coerce").dt.strftime("%Y-%m-%d")


def prediction_rows(
    rows: pd.DataFrame, *, model_version: str, request_time: str, model: str | None
) -> pd.DataFrame:
    value_col = PREDICTION if PREDICTION in rows else TARGET
    frame = pd.DataFrame(
        {
            "v": model_version,
            "s": rows[STORE].astype(np.int64),
            "f": rows[FAMILY].astype(str),
            "d": dates(rows[DATE]),
            "h": rows[HORIZON_DAY].astype(np.int64),
            "p": rows[value_col].astype(np.float64),
            "m": rows[MODEL].astype(str) if MODEL in rows else (model or "unknown"),
            "t": request_time,
        }
    )
    if frame["d"].isna().any() or not np.isfinite(frame["p"]).all():
        raise DataValidationError("prediction rows with invalid dates or values")
    return frame


def is_true(rows: pd.DataFrame, name: str) -> npt.NDArray[np.bool_]:
    """Read an optional column: True where it holds the boolean true (absent or else: False)."""
    if name not in rows:
        return np.zeros(len(rows), dtype=bool)
    if rows[name].dtype == bool:
        return rows[name].to_numpy(dtype=bool)
    return np.fromiter((v is True or v is np.True_ for v in rows[name]), bool, count=len(rows))


def actual_rows(rows: pd.DataFrame) -> tuple[list[tuple[object, ...]], int]:
    """Return the valid actuals, one row per key, and the number of rows rejected.

    Invalid: a missing date, a store that is not an integer, sales not finite, negative or above
    MAX_SALES; every row of a key repeated with different values (which one is right is
    unknown). A key repeated with the same value is one row, a correction if any repeat says so.
    """
    missing = [c for c in (DATE, STORE, FAMILY, TARGET) if c not in rows]
    if missing:
        raise DataValidationError(f"actuals lack columns {missing}")
    frame = pd.DataFrame(
        {
            STORE: pd.to_numeric(rows[STORE], errors="coerce"),
            FAMILY: rows[FAMILY].astype(str),
            DATE: dates(rows[DATE]),
            TARGET: pd.to_numeric(rows[TARGET], errors="coerce"),
            CORRECTION: is_true(rows, CORRECTION),
            REQUEST_ID: rows[REQUEST_ID].astype(object) if REQUEST_ID in rows else None,
        }
    )
    store, sales = frame[STORE].to_numpy(np.float64), frame[TARGET].to_numpy(np.float64)
    with np.errstate(invalid="ignore"):
        good = frame[DATE].notna().to_numpy() & np.isfinite(store) & (store == np.round(store))
        good &= np.isfinite(sales) & (sales >= 0) & (sales <= MAX_SALES)
    frame = frame[good].sort_values(list(ACTUAL_KEY), kind="stable")
    keys = frame[list(ACTUAL_KEY)]
    repeat = (keys == keys.shift()).all(axis=1).to_numpy()
    key_id = np.cumsum(~repeat)
    differs = disagreeing_repeats(repeat, frame[TARGET].to_numpy())
    contradicted = np.isin(key_id, key_id[differs])
    starts = np.flatnonzero(~repeat)
    correct = frame[CORRECTION].to_numpy(dtype=bool)
    correct = np.logical_or.reduceat(correct, starts)[key_id - 1] if starts.size else correct
    keep = ~repeat & ~contradicted
    kept = frame[keep]
    records: list[tuple[object, ...]] = list(
        zip(
            kept[STORE].astype(np.int64),
            kept[FAMILY],
            kept[DATE],
            kept[TARGET],
            correct[keep].astype(int).tolist(),
            [None if pd.isna(r) else str(r) for r in kept[REQUEST_ID]],
            strict=True,
        )
    )
    return records, int((~good).sum() + contradicted.sum())
