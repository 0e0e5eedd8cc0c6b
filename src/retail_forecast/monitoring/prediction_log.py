"""PredictionLog: served forecasts and actuals in SQLite, accuracy over time, degradation alert.

Every served prediction is one row keyed by (model version, series, target date, horizon day);
logging the same key again keeps the latest request. Actuals are keyed by (series, date).

Actuals policy (idempotent, late data welcome): a row that repeats a stored value changes
nothing; a row with a *different* value for a stored key is a correction from the source system
and replaces it (``revisions`` counts how often; logged at WARNING), so accuracy always uses the
latest known actual. Within one batch the last row of a key wins. Actuals may arrive before or
after the predictions they score; the join is done when accuracy is asked for.

Monitoring must never take serving down: :meth:`PredictionLog.log_predictions` catches every
failure (database locked, disk full, unwritable path, bad rows), logs it and returns False.
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from retail_forecast.config import MonitoringConfig
from retail_forecast.errors import DataValidationError
from retail_forecast.monitoring.accuracy import (
    ACTUAL,
    HORIZON_DAY,
    MODEL,
    PREDICTION,
    UNAVAILABLE,
    MonitoringStatus,
    accuracy_table,
    evaluate_status,
)
from retail_forecast.schema import DATE, FAMILY, STORE, TARGET

logger = logging.getLogger(__name__)

__all__ = ["ACTUAL", "IngestResult", "MonitoringStatus", "PredictionLog", "accuracy_table"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    model_version TEXT NOT NULL, store_nbr INTEGER NOT NULL, family TEXT NOT NULL,
    target_date TEXT NOT NULL, horizon_day INTEGER NOT NULL, prediction REAL NOT NULL,
    model TEXT NOT NULL, request_time TEXT NOT NULL,
    PRIMARY KEY (model_version, store_nbr, family, target_date, horizon_day)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS predictions_target ON predictions (target_date, model_version);
CREATE TABLE IF NOT EXISTS actuals (
    store_nbr INTEGER NOT NULL, family TEXT NOT NULL, date TEXT NOT NULL, sales REAL NOT NULL,
    ingested_at TEXT NOT NULL, revisions INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (store_nbr, family, date)
) WITHOUT ROWID;
"""

UPSERT_ACTUALS = """
INSERT INTO actuals (store_nbr, family, date, sales, ingested_at)
SELECT store_nbr, family, date, sales, ? FROM incoming WHERE true
ON CONFLICT (store_nbr, family, date) DO UPDATE SET
    sales = excluded.sales, ingested_at = excluded.ingested_at, revisions = revisions + 1
WHERE actuals.sales != excluded.sales
"""

COUNT_INCOMING = """
SELECT
    SUM(a.sales IS NULL),
    SUM(a.sales IS NOT NULL AND a.sales = i.sales),
    SUM(a.sales IS NOT NULL AND a.sales != i.sales)
FROM incoming i LEFT JOIN actuals a
    ON a.store_nbr = i.store_nbr AND a.family = i.family AND a.date = i.date
"""

JOINED = """
SELECT p.model_version, p.model, p.store_nbr, p.family, p.target_date AS date,
       p.horizon_day, p.prediction, a.sales AS actual, p.request_time
FROM predictions p JOIN actuals a
    ON a.store_nbr = p.store_nbr AND a.family = p.family AND a.date = p.target_date
WHERE (:version IS NULL OR p.model_version = :version) AND p.target_date >= :first
"""

LAST_JOINED = """
SELECT MAX(p.target_date)
FROM predictions p JOIN actuals a
    ON a.store_nbr = p.store_nbr AND a.family = p.family AND a.date = p.target_date
WHERE (:version IS NULL OR p.model_version = :version)
"""


@dataclass(frozen=True)
class IngestResult:
    """Counts of one actuals batch; ``ok`` False when the store could not be written."""

    received: int
    inserted: int = 0
    unchanged: int = 0
    revised: int = 0
    rejected: int = 0
    ok: bool = True
    error: str | None = None


def _iso(value: dt.datetime | None) -> str:
    stamp = value or dt.datetime.now(dt.UTC)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return stamp.isoformat(timespec="milliseconds")


def _dates(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, errors="coerce").dt.strftime("%Y-%m-%d")


def _prediction_rows(
    rows: pd.DataFrame, *, model_version: str, request_time: str, model: str | None
) -> list[tuple[object, ...]]:
    value_col = PREDICTION if PREDICTION in rows else TARGET
    frame = pd.DataFrame(
        {
            "v": model_version,
            "s": rows[STORE].astype(np.int64),
            "f": rows[FAMILY].astype(str),
            "d": _dates(rows[DATE]),
            "h": rows[HORIZON_DAY].astype(np.int64),
            "p": rows[value_col].astype(np.float64),
            "m": rows[MODEL].astype(str) if MODEL in rows else (model or "unknown"),
            "t": request_time,
        }
    )
    if frame["d"].isna().any() or not np.isfinite(frame["p"]).all():
        raise DataValidationError("prediction rows with invalid dates or values")
    return list(frame.itertuples(index=False, name=None))


class PredictionLog:
    """SQLite (WAL) store of served predictions and observed actuals."""

    def __init__(self, db_path: Path, *, timeout_s: float = 2.0) -> None:
        self.db_path = Path(db_path)
        self.timeout_s = timeout_s

    @classmethod
    def from_config(cls, config: MonitoringConfig) -> PredictionLog:
        return cls(config.db_path, timeout_s=config.db_timeout_s)

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """Open a connection (creating the file and schema), commit on success."""
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self.db_path, timeout=self.timeout_s)) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(SCHEMA)
            with conn:  # one transaction: commit, or roll back on error
                yield conn

    def log_predictions(
        self,
        rows: pd.DataFrame,
        *,
        model_version: str,
        request_time: dt.datetime | None = None,
        model: str | None = None,
    ) -> bool:
        """Record served forecasts; never raises (returns False and logs on any failure).

        ``rows``: date (target date), store_nbr, family, horizon_day and the forecast as
        ``prediction`` or ``sales``; an optional ``model`` column names the producing model.
        """
        try:
            records = _prediction_rows(
                rows, model_version=model_version, request_time=_iso(request_time), model=model
            )
            with self.connect() as conn:
                conn.executemany(
                    "INSERT OR REPLACE INTO predictions VALUES (?, ?, ?, ?, ?, ?, ?, ?)", records
                )
        except Exception:  # monitoring must never fail a prediction (RELIABILITY 26)
            logger.exception(
                "prediction log write failed; predictions not logged db=%s rows=%d",
                self.db_path,
                len(rows),
            )
            return False
        return True

    def ingest_actuals(self, rows: pd.DataFrame, *, now: dt.datetime | None = None) -> IngestResult:
        """Store observed sales (idempotent; a changed value replaces the stored one).

        Rows with an invalid date, store or a negative / missing sales value are rejected and
        counted; a missing column raises DataValidationError. Store failures are logged and
        returned as ``ok=False``.
        """
        missing = [c for c in (DATE, STORE, FAMILY, TARGET) if c not in rows]
        if missing:
            raise DataValidationError(f"actuals lack columns {missing}")
        frame = pd.DataFrame(
            {
                STORE: pd.to_numeric(rows[STORE], errors="coerce"),
                FAMILY: rows[FAMILY].astype(str),
                DATE: _dates(rows[DATE]),
                TARGET: pd.to_numeric(rows[TARGET], errors="coerce"),
            }
        )
        good = frame[STORE].notna() & frame[DATE].notna() & frame[TARGET].ge(0)
        rejected = int((~good).sum())
        frame = frame[good].drop_duplicates([STORE, FAMILY, DATE], keep="last")
        records = list(
            zip(
                frame[STORE].astype(np.int64),
                frame[FAMILY],
                frame[DATE],
                frame[TARGET],
                strict=True,
            )
        )
        try:
            counts = self._upsert_actuals(records, _iso(now))
        except (sqlite3.Error, OSError) as exc:
            logger.exception("actuals not stored db=%s rows=%d", self.db_path, len(rows))
            return IngestResult(len(rows), rejected=rejected, ok=False, error=str(exc))
        inserted, unchanged, revised = counts
        if revised:
            logger.warning("actuals revised rows=%d (later values replace earlier)", revised)
        logger.info(
            "actuals ingested inserted=%d unchanged=%d revised=%d rejected=%d",
            inserted,
            unchanged,
            revised,
            rejected,
        )
        return IngestResult(len(rows), inserted, unchanged, revised, rejected)

    def _upsert_actuals(
        self, records: Sequence[tuple[object, ...]], now: str
    ) -> tuple[int, int, int]:
        with self.connect() as conn:
            conn.execute(
                "CREATE TEMP TABLE IF NOT EXISTS incoming "
                "(store_nbr INTEGER, family TEXT, date TEXT, sales REAL)"
            )
            conn.execute("DELETE FROM incoming")
            conn.executemany("INSERT INTO incoming VALUES (?, ?, ?, ?)", records)
            row = conn.execute(COUNT_INCOMING).fetchone()
            conn.execute(UPSERT_ACTUALS, (now,))
            conn.execute("DROP TABLE incoming")
        return int(row[0] or 0), int(row[1] or 0), int(row[2] or 0)

    def latest_version(self) -> str | None:
        """Return the model version of the most recently logged prediction (None when empty)."""
        with self.connect() as conn:
            row = conn.execute(
                "SELECT model_version FROM predictions ORDER BY request_time DESC LIMIT 1"
            ).fetchone()
        return None if row is None else str(row[0])

    def joined(
        self, *, window_days: int | None = None, model_version: str | None = None
    ) -> pd.DataFrame:
        """Predictions joined with their actuals; the last ``window_days`` scored target days."""
        params: dict[str, str | None] = {"version": model_version, "first": "0000-00-00"}
        with self.connect() as conn:
            if window_days is not None:
                last = conn.execute(LAST_JOINED, params).fetchone()[0]
                if last is not None:
                    first = pd.Timestamp(last) - pd.Timedelta(days=window_days - 1)
                    params["first"] = f"{first:%Y-%m-%d}"
            frame = pd.read_sql_query(JOINED, conn, params=params)
        frame[DATE] = pd.to_datetime(frame[DATE])
        return frame

    def accuracy(
        self,
        by: str | Sequence[str] | None = FAMILY,
        *,
        window_days: int | None = None,
        model_version: str | None = None,
    ) -> pd.DataFrame:
        """RMSLE, MAE, bias and row count per ``by`` (family, horizon_day, date, ... or None)."""
        return accuracy_table(
            self.joined(window_days=window_days, model_version=model_version), by=by
        )

    def status(
        self,
        backtest_metrics: Mapping[str, Any],
        *,
        model_version: str | None = None,
        ratio: float = 1.2,
        window_days: int = 7,
        min_rows: int = 100,
    ) -> MonitoringStatus:
        """Compare the last ``window_days`` of a version (default: the latest) with the backtest.

        Never raises on a store failure: the status is then ``unavailable`` (no alert).
        """
        try:
            version = model_version or self.latest_version()
            joined = self.joined(window_days=window_days, model_version=version)
        except (sqlite3.Error, OSError) as exc:
            logger.exception("monitoring store unreadable db=%s", self.db_path)
            return MonitoringStatus(
                UNAVAILABLE, False, model_version, ratio, window_days, message=str(exc)
            )
        return evaluate_status(
            joined,
            backtest_metrics,
            model_version=version,
            ratio=ratio,
            window_days=window_days,
            min_rows=min_rows,
        )

    def worst_series(
        self, *, n: int = 1, window_days: int | None = None, model_version: str | None = None
    ) -> pd.DataFrame:
        """Return the joined rows of the ``n`` worst series (freshest forecast per day)."""
        joined = self.joined(window_days=window_days, model_version=model_version)
        if joined.empty:
            return joined
        per_series = accuracy_table(joined, by=[STORE, FAMILY])
        worst = per_series.nlargest(n, "rmsle")[[STORE, FAMILY]]
        rows = joined.merge(worst, on=[STORE, FAMILY])
        rows = rows.sort_values([STORE, FAMILY, DATE, HORIZON_DAY])
        return rows.drop_duplicates([STORE, FAMILY, DATE]).reset_index(drop=True)
