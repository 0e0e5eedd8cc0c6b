"""The quantiles served with each logged forecast: a long table of the prediction log.

One row per (model version, target date, series, horizon day, level) in ``prediction_quantiles``;
a request that asked for no quantiles adds no row, so the log costs what it did before quantiles
existed (one ``EXISTS`` probe per write while the table is empty for that version). The table
is created by ``CREATE TABLE IF NOT EXISTS`` like the rest of the log's schema, so an existing
log file gains it on first open and keeps every row it held (no ALTER of ``predictions``).

Frames carry quantiles as one column per level named :func:`quantile_column` (``quantile_0.1``;
``repr`` of the float, so the level reads back exactly); NaN where a request did not ask for
that level. Logging a key again keeps the latest request's quantiles only (its point replaces
the earlier point in ``predictions``, and an interval must not pair two requests' bounds).
"""

from __future__ import annotations

import sqlite3
from typing import Final

import numpy as np
import pandas as pd

from retail_forecast.errors import DataValidationError
from retail_forecast.schema import DATE

QUANTILE_PREFIX: Final = "quantile_"
LEVEL: Final = "level"
VALUE: Final = "value"

QUANTILES_DDL: Final = """
CREATE TABLE IF NOT EXISTS prediction_quantiles (
    model_version TEXT NOT NULL, target_date TEXT NOT NULL, store_nbr INTEGER NOT NULL,
    family TEXT NOT NULL, horizon_day INTEGER NOT NULL, level REAL NOT NULL, value REAL NOT NULL,
    PRIMARY KEY (model_version, target_date, store_nbr, family, horizon_day, level)
) WITHOUT ROWID
"""

_KEY_WHERE: Final = (
    "model_version = ? AND target_date = ? AND store_nbr = ? AND family = ? AND horizon_day = ?"
)

# Logged quantiles of a version joined with their actuals and the point served with them.
JOINED_QUANTILES: Final = """
SELECT q.store_nbr, q.family, q.target_date AS date, q.horizon_day, q.level, q.value,
       p.prediction, a.sales AS actual
FROM prediction_quantiles q
JOIN actuals a ON a.store_nbr = q.store_nbr AND a.family = q.family AND a.date = q.target_date
JOIN predictions p ON p.model_version = q.model_version AND p.store_nbr = q.store_nbr
    AND p.family = q.family AND p.target_date = q.target_date AND p.horizon_day = q.horizon_day
WHERE q.model_version = :version AND q.target_date >= :first
"""


def quantile_column(level: float) -> str:
    """Name the frame column of one level: ``quantile_`` + repr (exact round trip)."""
    return f"{QUANTILE_PREFIX}{float(level)!r}"


def quantile_levels(frame: pd.DataFrame) -> dict[float, str]:
    """Levels present in a frame's columns -> their column names, in level order."""
    found: dict[float, str] = {}
    for name in frame.columns:
        if isinstance(name, str) and name.startswith(QUANTILE_PREFIX):
            level = float(name.removeprefix(QUANTILE_PREFIX))
            if not 0.0 < level < 1.0:
                raise DataValidationError(f"quantile column {name!r}: level must be in (0, 1)")
            found[level] = name
    return dict(sorted(found.items()))


def _key_tuples(keys: pd.DataFrame) -> list[tuple[object, ...]]:
    """Return the keys' rows as plain tuples (``itertuples`` costs more than the writes)."""
    return list(zip(*(keys[name].tolist() for name in keys.columns), strict=True))


def _records(
    keys: list[tuple[object, ...]], rows: pd.DataFrame, levels: dict[float, str]
) -> list[tuple[object, ...]]:
    """(version, date, store, family, horizon, level, value) for each value a request asked for."""
    out: list[tuple[object, ...]] = []
    for level, name in levels.items():
        values = pd.to_numeric(rows[name], errors="coerce").to_numpy(np.float64)
        asked = ~np.isnan(values)
        if not np.all(np.isfinite(values[asked]) & (values[asked] >= 0)):
            raise DataValidationError(f"{name}: quantiles must be finite and >= 0")
        out.extend(
            (*key, level, value)
            for key, value, wanted in zip(keys, values.tolist(), asked.tolist(), strict=True)
            if wanted
        )
    return out


def write_quantiles(
    conn: sqlite3.Connection, keys: pd.DataFrame, rows: pd.DataFrame, *, model_version: str
) -> None:
    """Replace the quantiles of the logged keys by the rows' (in the caller's transaction).

    ``keys``: (version, date, store, family, horizon) per row as the predictions table stores
    them; ``rows``: the logged frame, aligned, with its ``quantile_*`` columns if any. A key the
    batch holds twice keeps its last row, as ``INSERT OR REPLACE`` does for the point.
    """
    levels = quantile_levels(rows)
    if not levels and not has_quantiles(conn, model_version):
        return  # the cheap path: no quantiles asked and none logged for this version
    last = ~keys.duplicated(keep="last").to_numpy()
    if not last.all():
        keys, rows = keys[last], rows[last]
    key_rows = _key_tuples(keys)
    conn.executemany(
        f"DELETE FROM prediction_quantiles WHERE {_KEY_WHERE}",  # noqa: S608 (constant text)
        key_rows,
    )
    if levels:
        conn.executemany(
            "INSERT INTO prediction_quantiles VALUES (?, ?, ?, ?, ?, ?, ?)",
            _records(key_rows, rows, levels),
        )


def has_quantiles(conn: sqlite3.Connection, model_version: str) -> bool:
    """Whether any quantile of ``model_version`` was logged, scored or not (one index probe)."""
    probe = "SELECT 1 FROM prediction_quantiles WHERE model_version = ? LIMIT 1"
    return conn.execute(probe, (model_version,)).fetchone() is not None


def read_joined_quantiles(conn: sqlite3.Connection, *, version: str, first: str) -> pd.DataFrame:
    """Read the quantiles of ``version`` from target date ``first`` on, with actual and point.

    Long: store_nbr, family, date (Timestamp), horizon_day, level, value, prediction, actual.
    """
    frame = pd.read_sql_query(JOINED_QUANTILES, conn, params={"version": version, "first": first})
    frame[DATE] = pd.to_datetime(frame[DATE])
    return frame


__all__ = [
    "LEVEL",
    "QUANTILES_DDL",
    "VALUE",
    "has_quantiles",
    "quantile_column",
    "quantile_levels",
    "read_joined_quantiles",
    "write_quantiles",
]
