"""PredictionLogDB: the SQLite store of served forecasts and observed actuals (no metrics).

Every served prediction is one row keyed by (model version, series, target date, horizon day);
logging the same key again keeps the latest request. Actuals are keyed by (series, date) and
follow the conflict policy of :mod:`retail_forecast.storage.conflict_policy`: a repeat of a
stored value changes nothing; a different value is a conflict, counted and named in the
:class:`IngestResult` and logged at WARNING, and the stored value stays, unless the row says
``correction``: then it replaces the stored value and the log audits it in its ``corrections``
table (storage.corrections), in the same transaction. The other rows of the batch are stored:
the log is fed after the history store accepted those actuals, corrections included (and by
``monitor ingest-actuals``), and one conflicting row must not cost monitoring the rest. Sales
above ``MAX_SALES`` (storage.plausibility) are invalid rows.
Actuals may arrive before or after the predictions they score; :meth:`PredictionLogDB.joined`
pairs them when asked. Accuracy over time is ``monitoring.prediction_log.PredictionLog``.

Monitoring must never take serving down: :meth:`PredictionLogDB.log_predictions` catches every
failure (database locked, disk full, unwritable path, bad rows), logs it and returns False.
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Self

import numpy as np
import pandas as pd

from retail_forecast.config import MonitoringConfig
from retail_forecast.schema import DATE
from retail_forecast.storage.conflict_policy import (
    MAX_LISTED,
    agrees,
    conflict_message,
    describe_conflict,
)
from retail_forecast.storage.corrections import (
    CORRECTIONS_DDL,
    Correction,
    read_corrections,
    record_corrections,
)
from retail_forecast.storage.prediction_log_rows import (
    ACTUAL,
    HORIZON_DAY,
    MODEL,
    PREDICTION,
    actual_rows,
    prediction_rows,
)
from retail_forecast.storage.prediction_quantiles import (
    QUANTILES_DDL,
    has_quantiles,
    read_joined_quantiles,
    write_quantiles,
)

logger = logging.getLogger(__name__)

__all__ = ["ACTUAL", "HORIZON_DAY", "MODEL", "PREDICTION", "IngestResult", "PredictionLogDB"]

SCHEMA: Final = (
    """
CREATE TABLE IF NOT EXISTS predictions (
    model_version TEXT NOT NULL, store_nbr INTEGER NOT NULL, family TEXT NOT NULL,
    target_date TEXT NOT NULL, horizon_day INTEGER NOT NULL, prediction REAL NOT NULL,
    model TEXT NOT NULL, request_time TEXT NOT NULL,
    PRIMARY KEY (model_version, store_nbr, family, target_date, horizon_day)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS predictions_target ON predictions (target_date, model_version);
CREATE TABLE IF NOT EXISTS actuals (
    store_nbr INTEGER NOT NULL, family TEXT NOT NULL, date TEXT NOT NULL, sales REAL NOT NULL,
    ingested_at TEXT NOT NULL,
    PRIMARY KEY (store_nbr, family, date)
) WITHOUT ROWID;
"""
    + CORRECTIONS_DDL
    + ";"
    + QUANTILES_DDL
    + ";"
)

# What is stored for each incoming row (NULL: nothing yet), then the new rows only.
STORED_FOR_INCOMING: Final = """
SELECT i.store_nbr, i.family, i.date, i.sales, a.sales, i.correction, i.request_id
FROM incoming i LEFT JOIN actuals a
    ON a.store_nbr = i.store_nbr AND a.family = i.family AND a.date = i.date
ORDER BY i.rowid
"""
INSERT_NEW_ACTUALS: Final = """
INSERT INTO actuals (store_nbr, family, date, sales, ingested_at)
SELECT store_nbr, family, date, sales, ? FROM incoming WHERE true
ON CONFLICT (store_nbr, family, date) DO NOTHING
"""

JOINED: Final = """
SELECT p.model_version, p.model, p.store_nbr, p.family, p.target_date AS date,
       p.horizon_day, p.prediction, a.sales AS actual, p.request_time
FROM predictions p JOIN actuals a
    ON a.store_nbr = p.store_nbr AND a.family = p.family AND a.date = p.target_date
WHERE (:version IS NULL OR p.model_version = :version) AND p.target_date >= :first
"""

LAST_JOINED: Final = """
SELECT MAX(p.target_date)
FROM predictions p JOIN actuals a
    ON a.store_nbr = p.store_nbr AND a.family = p.family AND a.date = p.target_date
WHERE (:version IS NULL OR p.model_version = :version)
"""


@dataclass(frozen=True)
class IngestResult:
    """Counts of one actuals batch; ``ok`` False when the store could not be written.

    ``conflicts``: rows whose value differs from the stored one (kept; ``conflict_examples``
    names the first ones); ``corrected``: rows flagged ``correction`` that replaced a different
    stored value (audited); ``rejected``: invalid rows, including every row of a key that the
    batch repeats with different values.
    """

    received: int
    inserted: int = 0
    unchanged: int = 0
    conflicts: int = 0
    rejected: int = 0
    ok: bool = True
    error: str | None = None
    conflict_examples: tuple[str, ...] = ()
    corrected: int = 0


@dataclass(frozen=True)
class _Stored:
    inserted: int
    unchanged: int
    conflicts: int
    examples: list[str]
    corrected: int


def _iso(value: dt.datetime | None) -> str:
    stamp = value or dt.datetime.now(dt.UTC)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return stamp.isoformat(timespec="milliseconds")


class PredictionLogDB:
    """SQLite (WAL) store of served predictions and observed actuals."""

    def __init__(self, db_path: Path, *, timeout_s: float = 2.0) -> None:
        self.db_path = Path(db_path)
        self.timeout_s = timeout_s

    @classmethod
    def from_config(cls, config: MonitoringConfig) -> Self:
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
        ``prediction`` or ``sales``; an optional ``model`` column names the producing model,
        optional ``quantile_<level>`` columns the quantiles served (NaN: not asked; see
        storage.prediction_quantiles), stored with the point in one transaction.
        """
        try:
            frame = prediction_rows(
                rows, model_version=model_version, request_time=_iso(request_time), model=model
            )
            with self.connect() as conn:
                conn.executemany(
                    "INSERT OR REPLACE INTO predictions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    frame.itertuples(index=False, name=None),
                )
                keys = frame[["v", "d", "s", "f", "h"]]
                write_quantiles(conn, keys, rows, model_version=model_version)
        except Exception:  # monitoring must never fail a prediction (promise 26)
            logger.exception(
                "prediction log write failed; predictions not logged db=%s rows=%d",
                self.db_path,
                len(rows),
            )
            return False
        return True

    def ingest_actuals(self, rows: pd.DataFrame, *, now: dt.datetime | None = None) -> IngestResult:
        """Store observed sales (date, store_nbr, family, sales) under the conflict policy.

        New keys are stored, repeats of a stored value change nothing, a different value is a
        conflict (counted, the stored value stays). Invalid rows are rejected and counted; a
        missing column raises DataValidationError. Store failures are logged and returned as
        ``ok=False``.
        """
        records, rejected = actual_rows(rows)
        try:
            stored = self._store_actuals(records, _iso(now))
        except (sqlite3.Error, OSError) as exc:
            logger.exception("actuals not stored db=%s rows=%d", self.db_path, len(rows))
            return IngestResult(len(rows), rejected=rejected, ok=False, error=str(exc))
        if stored.conflicts:
            logger.warning(
                "%s",
                conflict_message(
                    stored.examples, outcome="the stored values are kept", count=stored.conflicts
                ),
            )
        logger.info(
            "actuals ingested inserted=%d unchanged=%d corrected=%d conflicts=%d rejected=%d",
            stored.inserted,
            stored.unchanged,
            stored.corrected,
            stored.conflicts,
            rejected,
        )
        return IngestResult(
            len(rows),
            inserted=stored.inserted,
            unchanged=stored.unchanged,
            conflicts=stored.conflicts,
            rejected=rejected,
            conflict_examples=tuple(stored.examples),
            corrected=stored.corrected,
        )

    def _store_actuals(self, records: Sequence[tuple[object, ...]], now: str) -> _Stored:
        with self.connect() as conn:
            conn.execute("BEGIN IMMEDIATE")  # what is stored cannot change until the insert
            conn.execute(
                "CREATE TEMP TABLE IF NOT EXISTS incoming (store_nbr INTEGER, family TEXT,"
                " date TEXT, sales REAL, correction INTEGER, request_id TEXT)"
            )
            conn.execute("DELETE FROM incoming")
            conn.executemany("INSERT INTO incoming VALUES (?, ?, ?, ?, ?, ?)", records)
            pairs = conn.execute(STORED_FOR_INCOMING).fetchall()
            conn.execute(INSERT_NEW_ACTUALS, (now,))
            conn.execute("DROP TABLE incoming")
            stored = np.array([row[4] for row in pairs], dtype=np.float64)  # None -> NaN: new
            new = np.isnan(stored)
            same = agrees(stored, np.array([row[3] for row in pairs], dtype=np.float64))
            differ = ~new & ~same
            fix = differ & np.array([bool(row[5]) for row in pairs], dtype=bool)
            _correct(conn, [pairs[i] for i in np.flatnonzero(fix)], now)
        clash = np.flatnonzero(differ & ~fix)
        examples = [
            describe_conflict(day, store, family, stored=(old, None), received=(sales, None))
            for store, family, day, sales, old, *_ in (pairs[i] for i in clash[:MAX_LISTED])
        ]
        return _Stored(int(new.sum()), int(same.sum()), len(clash), examples, int(fix.sum()))

    def corrections(self) -> pd.DataFrame:
        """Every correction the log applied (its audit table), oldest first."""
        with self.connect() as conn:
            return read_corrections(conn)

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
            params["first"] = _window_first(conn, model_version, window_days)
            frame = pd.read_sql_query(JOINED, conn, params=params)
        frame[DATE] = pd.to_datetime(frame[DATE])
        return frame

    def joined_quantiles(
        self, *, model_version: str, window_days: int | None = None
    ) -> tuple[pd.DataFrame, bool]:
        """Return a version's logged quantiles with actuals, over the window of :meth:`joined`.

        Returns the long frame (storage.prediction_quantiles.read_joined_quantiles) and whether
        the version has any quantile logged at all (scored or not).
        """
        with self.connect() as conn:
            first = _window_first(conn, model_version, window_days)
            frame = read_joined_quantiles(conn, version=model_version, first=first)
            served = not frame.empty or has_quantiles(conn, model_version)
        return frame, served


def _window_first(conn: sqlite3.Connection, version: str | None, window_days: int | None) -> str:
    """First target day of the last ``window_days`` scored target days (all: the epoch)."""
    if window_days is None:
        return "0000-00-00"
    last = conn.execute(LAST_JOINED, {"version": version}).fetchone()[0]
    if last is None:
        return "0000-00-00"
    return f"{pd.Timestamp(last) - pd.Timedelta(days=window_days - 1):%Y-%m-%d}"


def _correct(conn: sqlite3.Connection, rows: Sequence[tuple[Any, ...]], now: str) -> None:
    """Replace stored actuals by corrections and audit them (the caller's transaction)."""
    conn.executemany(
        "UPDATE actuals SET sales = ?, ingested_at = ? WHERE store_nbr = ? AND family = ?"
        " AND date = ?",
        [(sales, now, store, family, day) for store, family, day, sales, *_ in rows],
    )
    audit = [
        Correction(day, store, family, old, sales, None, None, request_id)
        for store, family, day, sales, old, _, request_id in rows
    ]
    record_corrections(conn, audit, now=now)
