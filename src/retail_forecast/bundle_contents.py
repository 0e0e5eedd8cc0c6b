"""What every bundle carries for serving: the history tail and the serving metadata.

Both writers of bundles (``pipeline.fit.train_bundle`` and the SageMaker training scripts in
``training/``) record the same serving contents, so a served bundle answers the same way
whichever wrote it: ``history.parquet`` (the last :data:`HISTORY_DAYS` days of every series)
and, in the manifest's metadata, the train window, the horizon, the request domain and the
history file's name.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import pandas as pd

from retail_forecast.closed_days import YearlyClosures, frame_yearly_closures
from retail_forecast.errors import ArtifactError
from retail_forecast.schema import DATE, FAMILY, PROMO, STORE
from retail_forecast.utils.io import write_parquet_atomic

HISTORY_FILE: Final = "history.parquet"
HISTORY_DAYS: Final = 120  # what serving keeps per series: >= every model's lookback + margin
# Bundles written before the horizon was a setting record none; all of them forecast 16 days.
# Reading old bundles is the one use of a horizon number outside the settings' default.
LEGACY_HORIZON: Final = 16
# Bundles written before yearly closures were learned from the data record none; every one of
# them closed 25 December (then a code rule): reading them keeps their answers.
LEGACY_YEARLY_CLOSURES: Final = ["12-25"]


def recorded_horizon(meta: Mapping[str, Any], *, source: object = "bundle") -> int:
    """Return the horizon a bundle (or a model file) records; :data:`LEGACY_HORIZON` if none."""
    value = meta.get("horizon", LEGACY_HORIZON)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ArtifactError(f"{source}: horizon must be a positive integer, got {value!r}")
    return value


def recorded_closures(domain: Mapping[str, Any], *, source: object = "bundle") -> YearlyClosures:
    """Return the yearly closures a bundle's domain records (:data:`LEGACY_YEARLY_CLOSURES`)."""
    return YearlyClosures.from_json(
        domain.get("yearly_closures", LEGACY_YEARLY_CLOSURES), source=source
    )


def serving_domain(sales: pd.DataFrame, horizon: int) -> dict[str, Any]:
    """Return what requests may ask for, recorded in the manifest (promise 19).

    ``yearly_closures``: the calendar days the history shows closed in every store, every year
    (closed_days.py), which serving answers 0 with ``closed: true``.
    """
    return {
        "stores": sorted(int(s) for s in sales[STORE].unique()),
        "families": sorted(str(f) for f in sales[FAMILY].unique()),
        "history_start": str(sales[DATE].min().date()),
        "history_end": str(sales[DATE].max().date()),
        "horizon": horizon,
        "onpromotion_max": int(sales[PROMO].max()),
        "yearly_closures": frame_yearly_closures(sales).to_json(),
    }


def serving_metadata(sales: pd.DataFrame, horizon: int) -> dict[str, Any]:
    """Return the manifest metadata serving reads: train window, horizon, domain, history file."""
    return {
        "train_window": {
            "start": str(sales[DATE].min().date()),
            "end": str(sales[DATE].max().date()),
        },
        "horizon": horizon,
        "domain": serving_domain(sales, horizon),
        "history_file": HISTORY_FILE,
    }


def write_history_tail(directory: Path, sales: pd.DataFrame) -> Path:
    """Write the last :data:`HISTORY_DAYS` days of ``sales`` as ``directory/HISTORY_FILE``."""
    tail = sales[sales[DATE] > sales[DATE].max() - pd.Timedelta(days=HISTORY_DAYS)]
    path = directory / HISTORY_FILE
    write_parquet_atomic(path, tail.reset_index(drop=True))
    return path
