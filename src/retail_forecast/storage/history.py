"""HistoryStore: the last N days of sales per series, in memory and persisted to SQLite.

Rules:

- ``history_end`` is the last date for which every series has an actual. Rows for later dates
  are kept *pending* (in memory and in SQLite) until their date is complete; then the window
  moves forward and keeps the last ``n_days`` complete dates.
- Dates after ``history_end`` must be contiguous: a row dated ``d`` is accepted only if every
  date from ``history_end + 1`` to ``d`` already has rows or is in the same call; a yearly
  closure of the bundle (``closures``) is the exception, it is filled as closed (sales 0,
  onpromotion 0, ``is_closed``) once a later date arrives, as the data layer does for a day
  with no row in the training history. A row with ``is_closed``
  (the API's ``open`` 0) is a day the data set closes: sales 0, stored ``is_closed``, so the
  features carry the last open day over it (promise 37), as in training.
- Known rows follow the package's conflict policy (``retail_forecast.storage``): re-sending one
  is a no-op; a different value for a known ``(date, store_nbr, family)`` raises ConflictError
  and nothing of that call is applied, unless the row says ``correction``: then it replaces the
  stored value (in the window or a pending day) and the store audits it in its ``corrections``
  table, in the same transaction (storage.corrections). Rows older than the window cannot be
  checked and are skipped (counted in ``n_too_old``); a correction older than it is refused.
- Every value the call would write (new or corrected) must be plausible (storage.plausibility):
  at most ``MAX_SALES``, and, unless its row says ``confirm_spike``, at most
  :attr:`HistoryStore.spike_rule`'s bound from the series' own window; else RefusedRowsError
  names the rows and nothing is applied.
- Each call is one SQLite transaction (WAL mode, ``synchronous=FULL``); the in-memory snapshot
  is replaced only after the commit. Readers take :meth:`HistoryStore.snapshot`, an immutable
  view that never mixes two states; mutation is serialized by a lock.
- Several processes (server workers) may open the same file. Each append takes SQLite's write
  lock first (``BEGIN IMMEDIATE``) and reloads the window if another process committed since
  (``PRAGMA data_version``), so appends from different workers are checked against each other;
  :meth:`HistoryStore.snapshot` reloads the same way, so every worker forecasts from the
  history that the last acknowledged append left.
"""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
import threading
from pathlib import Path
from types import TracebackType
from typing import Self

import numpy as np
import numpy.typing as npt
import pandas as pd

from retail_forecast.closed_days import NO_YEARLY_CLOSURES
from retail_forecast.errors import DataValidationError, ForecastError
from retail_forecast.schema import SeriesKey
from retail_forecast.storage.corrections import (
    Correction,
    corrected_window,
    history_corrections,
    read_corrections,
    write_history_corrections,
)
from retail_forecast.storage.history_db import (
    ObsRow,
    StoredState,
    connect,
    connect_memory,
    connect_readonly,
    iso,
    raise_write_error,
    read_only_error,
    read_state,
    rollback,
    write_actuals,
    write_initial,
)
from retail_forecast.storage.history_merge import Merge, merge_batch
from retail_forecast.storage.history_rows import (
    Batch,
    RowFlags,
    check_contiguous,
    complete_days,
    frame_to_window,
    normalize_rows,
)
from retail_forecast.storage.history_snapshot import (
    HistorySnapshot,
    advance,
    snapshot_of,
    with_window,
)
from retail_forecast.storage.plausibility import (
    RefusedRowsError,
    SpikeRule,
    implausible_rows,
    spike_problem,
)

__all__ = ["AppendResult", "HistorySnapshot", "HistoryStore"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class AppendResult:
    """What one ``append_actuals`` call did."""

    n_received: int
    n_new: int
    n_duplicate: int
    n_too_old: int
    n_closed_filled: int
    history_end_before: pd.Timestamp
    history_end: pd.Timestamp
    pending_dates: tuple[pd.Timestamp, ...]
    n_corrected: int = 0  # stored values replaced by a correction (audited)
    corrections: tuple[Correction, ...] = ()

    @property
    def n_written(self) -> int:
        """Rows that changed the history: new actuals and corrected values."""
        return self.n_new + self.n_corrected


@dataclasses.dataclass(frozen=True)
class _Change:
    """What one append wrote: the merge, the closed days filled, the corrections, the result."""

    merge: Merge
    filled: list[tuple[np.datetime64, npt.NDArray[np.int64]]]
    audit: tuple[Correction, ...]
    after: HistorySnapshot


def _report(n_received: int, before: HistorySnapshot, change: _Change) -> AppendResult:
    """Count and log what an append did (corrections one WARNING each: each moves forecasts)."""
    after = change.after
    result = AppendResult(
        n_received=n_received,
        n_new=int(change.merge.new_mask.sum()),
        n_duplicate=change.merge.n_duplicate,
        n_too_old=change.merge.n_too_old,
        n_closed_filled=sum(len(idx) for _, idx in change.filled),
        history_end_before=before.history_end,
        history_end=after.history_end,
        pending_dates=after.pending_dates,
        n_corrected=len(change.audit),
        corrections=change.audit,
    )
    logger.info(
        "actuals appended new=%d corrected=%d duplicate=%d too_old=%d end=%s pending=%d",
        result.n_new,
        result.n_corrected,
        result.n_duplicate,
        result.n_too_old,
        result.history_end.date(),
        len(result.pending_dates),
    )
    for fix in change.audit:
        logger.warning("actual corrected %s", fix)
    return result


class HistoryStore:
    """Sales history for server-side lags; build with :meth:`from_frame` or :meth:`open`."""

    def __init__(
        self, conn: sqlite3.Connection, snapshot: HistorySnapshot, n_days: int, *, source: str
    ) -> None:
        self._conn = conn
        self._snapshot = snapshot
        self.n_days = n_days
        self._source = source
        self.read_only: str | None = None  # why appends are refused (no path in it): see open
        self.spike_rule = SpikeRule()  # the plausibility bound of appends (set from settings)
        self.closures = NO_YEARLY_CLOSURES  # the bundle's yearly closed days (set by its loader)
        self._lock = threading.Lock()
        self._data_version = _data_version(conn)

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def from_frame(cls, sales: pd.DataFrame, *, n_days: int, db_path: Path) -> Self:
        """Keep the last ``n_days`` of a canonical frame; (re)creates ``db_path`` atomically.

        An existing database at ``db_path`` is replaced, so appended actuals in it are lost:
        at service start, :meth:`open` an existing store instead.
        """
        if n_days < 1:
            raise DataValidationError(f"n_days must be >= 1, got {n_days}")
        series, families, window = frame_to_window(sales, n_days=n_days)
        db_path = Path(db_path)
        db_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = db_path.with_name(f".{db_path.name}.tmp")
        tmp.unlink(missing_ok=True)
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            state = StoredState(series, families, window, pending={}, n_days=n_days)
            write_initial(conn, state)
        finally:
            conn.close()
        for suffix in ("-wal", "-shm"):  # a stale WAL must never meet the new file
            db_path.with_name(db_path.name + suffix).unlink(missing_ok=True)
        tmp.replace(db_path)
        logger.info(
            "history store created db=%s series=%d days=%d end=%s",
            db_path,
            len(series),
            len(window.dates),
            iso(window.dates[-1]),
        )
        return cls.open(db_path)

    @classmethod
    def open(cls, db_path: Path, *, read_only: str | None = None) -> Self:
        """Load a store written by :meth:`from_frame` (with every appended actual).

        ``read_only`` (why the store cannot be written): open it for reading only
        (``history_db.connect_readonly``); appends raise StoreReadOnlyError.
        """
        db_path = Path(db_path)
        if not db_path.is_file():
            raise ForecastError(f"history store {db_path} does not exist")
        conn = connect(db_path) if read_only is None else connect_readonly(db_path)
        try:
            state = read_state(conn, source=str(db_path))
        except BaseException:
            conn.close()
            raise
        store = cls(conn, snapshot_of(state), state.n_days, source=str(db_path))
        store.read_only = read_only
        return store

    @classmethod
    def in_memory(cls, sales: pd.DataFrame, *, n_days: int, source: str, read_only: str) -> Self:
        """Keep a frame's last ``n_days`` read-only in memory, for a ``source`` not created."""
        series, families, window = frame_to_window(sales, n_days=n_days)
        conn = connect_memory(StoredState(series, families, window, pending={}, n_days=n_days))
        store = cls(conn, snapshot_of(read_state(conn, source=source)), n_days, source=source)
        store.read_only = read_only
        return store

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- reading -----------------------------------------------------------------------------

    def snapshot(self) -> HistorySnapshot:
        """Return the current state (reloaded if another process appended since); immutable."""
        with self._lock:
            self._refresh()
            return self._snapshot

    def _refresh(self) -> None:
        """Reload the window when another connection committed (caller holds the lock)."""
        version = _data_version(self._conn)
        if version != self._data_version:
            self._snapshot = snapshot_of(read_state(self._conn, source=self._source))
            self._data_version = version
            logger.info("history store reloaded end=%s", self._snapshot.history_end.date())

    @property
    def history_end(self) -> pd.Timestamp:
        return self.snapshot().history_end

    @property
    def series(self) -> list[SeriesKey]:
        return list(self.snapshot().series)

    def to_frame(self) -> pd.DataFrame:
        return self.snapshot().to_frame()

    # -- appending ---------------------------------------------------------------------------

    def append_actuals(self, rows: pd.DataFrame) -> AppendResult:
        """Record observed sales (date, store_nbr, family, sales, onpromotion); see module doc.

        Raises DataValidationError (bad values, a gap after the history end), UnknownSeriesError
        (a series this store does not keep), ConflictError, StoreFullError (the disk is full) or
        StoreReadOnlyError (the store cannot be written); in each case nothing is applied.
        """
        if self.read_only is not None:
            raise read_only_error(self._source, self.read_only)
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")  # the write lock, across processes
                self._refresh()
                before = self._snapshot
                change = self._apply(before, rows)
                self._conn.execute("COMMIT")
            except BaseException as exc:
                rollback(self._conn)  # a full disk has rolled it back already
                raise_write_error(exc, self._source)  # StoreFullError / StoreReadOnlyError
                raise
            self._snapshot = change.after
        return _report(len(rows), before, change)

    def _apply(self, before: HistorySnapshot, rows: pd.DataFrame) -> _Change:
        """Judge ``rows`` against ``before`` and write them (the caller's transaction)."""
        batch, flags = normalize_rows(rows, before.index)
        merge = merge_batch(
            window=before.window,
            pending=before.pending,
            series=before.series,
            batch=batch,
            flags=flags,
            closures=self.closures,
        )
        check_contiguous(before.dates[-1], merge.pending, self.closures)
        self._check_plausible(before, batch, flags, merge)
        completed, filled = complete_days(
            before.dates[-1], merge.pending, len(before.series), self.closures
        )
        corrected = with_window(before, corrected_window(before.window, batch, merge.fixed))
        after = advance(corrected, merge.pending, completed, n_days=self.n_days)
        audit = history_corrections(before.series, batch, flags, merge)
        write_history_corrections(self._conn, batch, merge.fixed, audit)
        self._write(batch, merge.new_mask, filled, after)
        return _Change(merge, filled, tuple(audit), after)

    def _check_plausible(
        self, before: HistorySnapshot, batch: Batch, flags: RowFlags, merge: Merge
    ) -> None:
        """Refuse unconfirmed new or corrected values above their series' bound (O(rows))."""
        rows = np.concatenate([np.flatnonzero(merge.new_mask), merge.fixed])
        levels = before.levels[batch.idx[rows]]
        refused, bounds = implausible_rows(
            sales=batch.sales[rows],
            levels=levels,
            confirmed=flags.confirm[rows],
            rule=self.spike_rule,
        )
        problems = [
            spike_problem(
                int(flags.pos[rows[k]]),
                sales=float(batch.sales[rows[k]]),
                bound=float(bound),
                level=float(levels[k]),
                day=batch.dates[rows[k]],
                series=before.series[batch.idx[rows[k]]],
                rule=self.spike_rule,
                n_days=len(before.dates),
            )
            for k, bound in zip(refused.tolist(), bounds.tolist(), strict=True)
        ]
        if problems:
            raise RefusedRowsError(sorted(problems, key=lambda problem: problem.position))

    def corrections(self) -> pd.DataFrame:
        """Every correction this store applied (its audit table), oldest first."""
        with self._lock:
            return read_corrections(self._conn)

    def _write(
        self,
        batch: Batch,
        new_mask: npt.NDArray[np.bool_],
        filled: list[tuple[np.datetime64, npt.NDArray[np.int64]]],
        after: HistorySnapshot,
    ) -> None:
        new_rows: list[ObsRow] = [
            (iso(d), int(i), float(s), int(p), int(c))
            for d, i, s, p, c in zip(
                batch.dates[new_mask],
                batch.idx[new_mask],
                batch.sales[new_mask],
                batch.promo[new_mask],
                batch.closed[new_mask],
                strict=True,
            )
        ]
        new_rows += [(iso(day), int(i), 0.0, 0, 1) for day, idx in filled for i in idx]
        if new_rows:
            write_actuals(
                self._conn,
                new_rows,
                window_start=iso(after.dates[0]),
                history_end=iso(after.dates[-1]),
            )


def _data_version(conn: sqlite3.Connection) -> int:
    """SQLite's counter of commits made by *other* connections to this database file."""
    return int(conn.execute("PRAGMA data_version").fetchone()[0])
