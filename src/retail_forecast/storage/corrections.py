"""Corrections of stored actuals: the audit table both stores keep, and a window corrected.

A correction is a received row flagged ``correction`` whose value differs from the stored one
(storage.conflict_policy). Each store writes it in the same transaction as an audit row of its
own ``corrections`` table: the key, the old and the new value, when (UTC) and the request id
(``request_id`` column of the rows, when the API sent them). The table only grows: it is the
record of every value that was ever replaced, also after the window moved past the day. Read it
with :func:`read_corrections` (``HistoryStore.corrections()``, ``PredictionLogDB.corrections()``)
or with SQL: ``SELECT * FROM corrections``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3
from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from retail_forecast.storage.history_merge import Merge
from retail_forecast.storage.history_rows import DAY, REQUEST_ID, Batch, RowFlags, Window

__all__ = [
    "REQUEST_ID",
    "Correction",
    "corrected_window",
    "history_corrections",
    "read_corrections",
    "record_corrections",
    "write_history_corrections",
]

CORRECTIONS_DDL: Final = """
CREATE TABLE IF NOT EXISTS corrections (
    id INTEGER PRIMARY KEY, date TEXT NOT NULL, store_nbr INTEGER NOT NULL,
    family TEXT NOT NULL, old_sales REAL NOT NULL, new_sales REAL NOT NULL,
    old_onpromotion INTEGER, new_onpromotion INTEGER, corrected_at TEXT NOT NULL,
    request_id TEXT
)"""
_INSERT: Final = (
    "INSERT INTO corrections (date, store_nbr, family, old_sales, new_sales, old_onpromotion,"
    " new_onpromotion, corrected_at, request_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
COLUMNS: Final = (
    "date",
    "store_nbr",
    "family",
    "old_sales",
    "new_sales",
    "old_onpromotion",
    "new_onpromotion",
    "corrected_at",
    "request_id",
)


@dataclasses.dataclass(frozen=True)
class Correction:
    """One replaced actual; onpromotion is None where the store does not keep it."""

    date: str
    store_nbr: int
    family: str
    old_sales: float
    new_sales: float
    old_onpromotion: int | None
    new_onpromotion: int | None
    request_id: str | None


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def record_corrections(
    conn: sqlite3.Connection, corrections: Sequence[Correction], *, now: str | None = None
) -> None:
    """Append audit rows (in the caller's transaction; creates the table the first time)."""
    if not corrections:
        return
    conn.execute(CORRECTIONS_DDL)
    stamp = now or utc_now()
    conn.executemany(
        _INSERT,
        [
            (
                c.date,
                c.store_nbr,
                c.family,
                c.old_sales,
                c.new_sales,
                c.old_onpromotion,
                c.new_onpromotion,
                stamp,
                c.request_id,
            )
            for c in corrections
        ],
    )


def read_corrections(conn: sqlite3.Connection) -> pd.DataFrame:
    """Every recorded correction, oldest first (an empty frame when there was none)."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'corrections'"
    ).fetchone()
    if exists is None:
        return pd.DataFrame(columns=list(COLUMNS))
    query = f"SELECT {', '.join(COLUMNS)} FROM corrections ORDER BY id"  # noqa: S608 (constants)
    return pd.DataFrame(conn.execute(query).fetchall(), columns=list(COLUMNS))


def corrected_window(window: Window, batch: Batch, fixed: npt.NDArray[np.int64]) -> Window:
    """``window`` with the batch rows ``fixed`` dated inside it applied (new arrays)."""
    inside = fixed[batch.dates[fixed] <= window.dates[-1]]
    if not inside.size:
        return window
    col = ((batch.dates[inside] - window.dates[0]) // DAY).astype(np.int64)
    sales, promo = window.sales.copy(), window.promo.copy()
    sales[batch.idx[inside], col] = batch.sales[inside]
    promo[batch.idx[inside], col] = batch.promo[inside]
    return dataclasses.replace(window, sales=sales, promo=promo)


def history_corrections(
    series: Sequence[tuple[int, str]], batch: Batch, flags: RowFlags, merge: Merge
) -> list[Correction]:
    """Return the audit rows of a merge's corrections (the history store keeps onpromotion)."""
    return [
        Correction(
            date=str(batch.dates[r]),
            store_nbr=series[batch.idx[r]][0],
            family=series[batch.idx[r]][1],
            old_sales=old_sales,
            new_sales=float(batch.sales[r]),
            old_onpromotion=old_promo,
            new_onpromotion=int(batch.promo[r]),
            request_id=None if pd.isna(flags.request[r]) else str(flags.request[r]),
        )
        for r, old_sales, old_promo in zip(
            merge.fixed.tolist(), merge.old_sales.tolist(), merge.old_promo.tolist(), strict=True
        )
    ]


def write_history_corrections(
    conn: sqlite3.Connection,
    batch: Batch,
    fixed: npt.NDArray[np.int64],
    audit: Sequence[Correction],
) -> None:
    """Replace the corrected rows of the ``obs`` table and audit them (caller's transaction)."""
    conn.executemany(
        "UPDATE obs SET sales = ?, onpromotion = ? WHERE date = ? AND series_idx = ?",
        [
            (float(batch.sales[r]), int(batch.promo[r]), str(batch.dates[r]), int(batch.idx[r]))
            for r in fixed.tolist()
        ],
    )
    record_corrections(conn, audit)
