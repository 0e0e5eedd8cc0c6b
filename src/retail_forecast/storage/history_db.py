"""SQLite persistence of the history store: schema, first write, reload, one append."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np

from retail_forecast.errors import ForecastError
from retail_forecast.schema import SeriesKey
from retail_forecast.storage.history_rows import (
    Batch,
    PendingDay,
    Window,
    rows_to_state,
)

STORE_SCHEMA_VERSION: Final = 1
_DDL: Final = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE series (idx INTEGER PRIMARY KEY, store_nbr INTEGER NOT NULL,"
    " family TEXT NOT NULL, UNIQUE (store_nbr, family))",
    "CREATE TABLE obs (date TEXT NOT NULL, series_idx INTEGER NOT NULL, sales REAL NOT NULL,"
    " onpromotion INTEGER NOT NULL, is_closed INTEGER NOT NULL,"
    " PRIMARY KEY (date, series_idx)) WITHOUT ROWID",
)

ObsRow = tuple[str, int, float, int, int]


@dataclasses.dataclass(frozen=True)
class StoredState:
    """Everything a store database holds."""

    series: tuple[SeriesKey, ...]
    families: tuple[str, ...]
    window: Window
    pending: dict[np.datetime64, PendingDay]
    n_days: int


def iso(day: np.datetime64) -> str:
    return str(day.astype("datetime64[D]"))


def connect(db_path: Path) -> sqlite3.Connection:
    """Open with WAL and synchronous=FULL: an acknowledged append survives a power cut."""
    conn = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def write_initial(conn: sqlite3.Connection, state: StoredState) -> None:
    """Create the tables and write the window of a new store in one transaction."""
    for statement in _DDL:
        conn.execute(statement)
    window = state.window
    meta = {
        "schema_version": str(STORE_SCHEMA_VERSION),
        "n_days": str(state.n_days),
        "history_end": iso(window.dates[-1]),
        "families": json.dumps(list(state.families)),
    }
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO meta VALUES (?, ?)", sorted(meta.items()))
    conn.executemany(
        "INSERT INTO series VALUES (?, ?, ?)",
        [(i, store, family) for i, (store, family) in enumerate(state.series)],
    )
    n_series, width = window.sales.shape
    day_text = [iso(day) for day in window.dates]
    sales, promo, closed = window.sales.tolist(), window.promo.tolist(), window.closed.tolist()
    conn.executemany(
        "INSERT INTO obs VALUES (?, ?, ?, ?, ?)",
        (
            (day_text[j], i, sales[i][j], promo[i][j], int(closed[i][j]))
            for i in range(n_series)
            for j in range(width)
        ),
    )
    conn.execute("COMMIT")


def read_state(conn: sqlite3.Connection, *, source: str) -> StoredState:
    """Load a store; ForecastError if its schema is unknown or its window is incomplete."""
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    if meta.get("schema_version") != str(STORE_SCHEMA_VERSION):
        raise ForecastError(f"{source}: unsupported store schema {meta.get('schema_version')!r}")
    series = tuple(
        (int(store), str(family))
        for store, family in conn.execute("SELECT store_nbr, family FROM series ORDER BY idx")
    )
    rows = conn.execute(
        "SELECT date, series_idx, sales, onpromotion, is_closed FROM obs ORDER BY date, series_idx"
    ).fetchall()
    columns: list[tuple[Any, ...]] = list(zip(*rows, strict=True)) if rows else [()] * 5
    batch = Batch(
        dates=np.array(columns[0], dtype="datetime64[D]"),
        idx=np.array(columns[1], dtype=np.int64),
        sales=np.array(columns[2], dtype=np.float64),
        promo=np.array(columns[3], dtype=np.int64),
    )
    window, pending = rows_to_state(
        batch,
        np.array(columns[4], dtype=bool),
        end=np.datetime64(meta["history_end"], "D"),
        n_series=len(series),
        source=source,
    )
    return StoredState(
        series=series,
        families=tuple(json.loads(meta["families"])),
        window=window,
        pending=pending,
        n_days=int(meta["n_days"]),
    )


def write_actuals(
    conn: sqlite3.Connection, rows: Sequence[ObsRow], *, window_start: str, history_end: str
) -> None:
    """Add rows, move the history end, drop rows older than the window (caller's transaction)."""
    conn.executemany(
        "INSERT INTO obs (date, series_idx, sales, onpromotion, is_closed) VALUES (?, ?, ?, ?, ?)",
        rows,
    )
    conn.execute("UPDATE meta SET value = ? WHERE key = 'history_end'", (history_end,))
    conn.execute("DELETE FROM obs WHERE date < ?", (window_start,))
