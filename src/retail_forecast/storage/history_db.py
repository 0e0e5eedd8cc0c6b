"""SQLite persistence of the history store: schema, first write, reload, one append.

Also how the store is opened when it cannot be written (read-only, or a read-only copy in
memory) and what a failed write means: a full disk is :class:`StoreFullError`, a store that
cannot be written is :class:`StoreReadOnlyError`, each naming the database.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np

from retail_forecast.errors import ForecastError, StoreFullError, StoreReadOnlyError
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


# Why a failed open or write means "this store cannot be written here" (a short phrase). Any
# other error is not ours to explain and keeps its own class.
_UNWRITABLE_ERRNOS: Final = {
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
    errno.ENOTDIR: "a component of the path is not a directory",
    errno.EEXIST: "a component of the path is a file",  # mkdir(exist_ok=True) over a file
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
}
_UNWRITABLE_SQLITE: Final = {  # primary result codes
    sqlite3.SQLITE_READONLY: "the database is read-only",
    sqlite3.SQLITE_CANTOPEN: "the database file cannot be opened",
    sqlite3.SQLITE_PERM: "access denied",
    sqlite3.SQLITE_FULL: "the disk is full",
}
_FULL_ERRNOS: Final = frozenset({errno.ENOSPC, errno.EDQUOT})


def connect(db_path: Path) -> sqlite3.Connection:
    """Open for writing with WAL and synchronous=FULL: an acknowledged append survives a crash.

    One write is tried and rolled back: SQLite silently opens a file it may not write as
    read-only (and BEGIN IMMEDIATE may still succeed), so only a write tells, here at the
    start (``sqlite3.OperationalError``, SQLITE_READONLY) rather than at the first append.
    """
    conn = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("UPDATE meta SET value = value WHERE key = 'schema_version'")
        finally:
            rollback(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def connect_readonly(db_path: Path) -> sqlite3.Connection:
    """Open a store this process cannot write, for reading only.

    ``mode=ro`` sees every committed transaction, those still in the WAL too, but needs the
    ``-shm`` file, which a cleanly closed store in a directory we cannot write does not have.
    Then ``immutable=1`` reads the main file alone: complete only when no ``-wal`` file holds
    transactions, so a store with one is refused (the error of ``mode=ro``), never served stale.
    """
    uri = Path(db_path).resolve().as_uri()
    try:
        return _open_uri(f"{uri}?mode=ro")
    except sqlite3.OperationalError:
        wal = db_path.with_name(f"{db_path.name}-wal")
        if wal.exists() and wal.stat().st_size > 0:
            raise
    return _open_uri(f"{uri}?immutable=1")


def _open_uri(uri: str) -> sqlite3.Connection:
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("SELECT COUNT(*) FROM meta").fetchone()  # SQLite opens lazily: fail here
    except BaseException:
        conn.close()
        raise
    return conn


def connect_memory(state: StoredState) -> sqlite3.Connection:
    """Hold ``state`` in an in-memory database that refuses every write (``query_only``)."""
    conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    write_initial(conn, state)
    conn.execute("PRAGMA query_only = ON")
    return conn


def rollback(conn: sqlite3.Connection) -> None:
    """Roll back the open transaction, if any.

    SQLITE_FULL and I/O errors may roll the transaction back themselves; an unconditional
    ROLLBACK would then raise "no transaction is active" over the error that matters.
    """
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def unwritable_cause(exc: BaseException) -> str | None:
    """Return why ``exc`` means the store cannot be written here (a short phrase), or None."""
    if isinstance(exc, OSError):
        return _UNWRITABLE_ERRNOS.get(exc.errno) if exc.errno is not None else None
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)  # absent on errors of the module itself
        return _UNWRITABLE_SQLITE.get(code & 0xFF) if isinstance(code, int) else None
    return None


def is_disk_full(exc: BaseException) -> bool:
    """SQLite's SQLITE_FULL (its answer to ENOSPC) or the OS's ENOSPC / EDQUOT."""
    if isinstance(exc, OSError):
        return exc.errno in _FULL_ERRNOS
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF == sqlite3.SQLITE_FULL


def read_only_error(source: str, reason: str) -> StoreReadOnlyError:
    """Return the error of an append to a store opened read-only (``reason``: why)."""
    where = Path(source).parent
    return StoreReadOnlyError(
        f"{reason}. History store: {source}. Make {where} writable by the service and restart"
        " it, then send the actuals again."
    )


def raise_write_error(exc: BaseException, source: str) -> None:
    """Raise a failed append as StoreFullError or StoreReadOnlyError naming the store.

    Returns when ``exc`` is neither (the caller re-raises it). Nothing of the append was kept:
    the caller rolled its transaction back.
    """
    cause = unwritable_cause(exc)
    if cause is None:
        return
    where = Path(source).parent
    if is_disk_full(exc):
        raise StoreFullError(
            f"the disk under the history store {source} is full ({cause}); nothing of this"
            f" request was stored. Free space under {where}, then send the actuals again."
        ) from exc
    raise StoreReadOnlyError(
        f"the history store {source} cannot be written ({cause}); nothing of this request was"
        f" stored. Make {where} writable by the service, then send the actuals again."
    ) from exc


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
        closed=np.array(columns[4], dtype=bool),
    )
    window, pending = rows_to_state(
        batch,
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
