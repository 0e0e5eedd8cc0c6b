"""MonitoringRecorder: served forecasts and accepted actuals to the prediction log, off the path.

The routes hand a batch over (an O(1) append under a lock) and answer; one daemon writer thread
collects batches for ``linger_s``, builds the frames and writes them with the short SQLite
timeout of MonitoringConfig. The queue is bounded by rows: a batch that does not fit is dropped
and counted, never waited for. Every failure (database locked, disk full, unwritable path, a
bug) is logged and counted and never reaches a request (promise 26, docs/RELIABILITY.md).
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from retail_forecast.features.calendar import from_ordinals
from retail_forecast.schema import DATE, FAMILY, STORE
from retail_forecast.storage.conflict_policy import CORRECTION
from retail_forecast.storage.prediction_log_db import (
    HORIZON_DAY,
    MODEL,
    PREDICTION,
    PredictionLogDB,
)
from retail_forecast.storage.prediction_quantiles import quantile_column

logger = logging.getLogger(__name__)

DROP_WARN_EVERY_S = 10.0  # at most one WARNING per this many seconds while batches drop
LINGER_S = 0.5  # the writer collects batches this long, then writes them together


@dataclass(frozen=True)
class ServedForecasts:
    """One answered /predict request, as the columns the route already holds (no copies)."""

    model_version: str
    history_end: dt.date
    request_time: dt.datetime
    dates: Sequence[dt.date]
    stores: Sequence[int]
    families: Sequence[str]
    sales: Sequence[float]
    models: Sequence[str]
    # level -> values aligned with the rows; None when the request asked for no quantiles
    quantiles: Mapping[float, Sequence[float]] | None = None

    def __len__(self) -> int:
        return len(self.dates)

    def to_frame(self) -> pd.DataFrame:
        """Rows for the prediction log: open days only (a closed day is not a model's forecast)."""
        return served_frame([self])


def served_frame(group: Sequence[ServedForecasts]) -> pd.DataFrame:
    """:meth:`ServedForecasts.to_frame` of several requests, built at once (in their order)."""
    sizes = [len(served) for served in group]
    n = sum(sizes)
    models = np.fromiter((m for s in group for m in s.models), dtype=object, count=n)
    keep = models != "closed"
    ordinals = np.fromiter((d.toordinal() for s in group for d in s.dates), np.int64, count=n)
    ends = np.repeat([served.history_end.toordinal() for served in group], sizes)
    days = from_ordinals(ordinals)
    columns: dict[str, np.ndarray] = {
        DATE: days[keep],
        STORE: np.fromiter((v for s in group for v in s.stores), np.int64, count=n)[keep],
        FAMILY: np.fromiter((v for s in group for v in s.families), object, count=n)[keep],
        HORIZON_DAY: (ordinals - ends)[keep],
        PREDICTION: np.fromiter((v for s in group for v in s.sales), np.float64, count=n)[keep],
        MODEL: models[keep],
    }
    for level, values in _quantile_columns(group, sizes).items():
        columns[quantile_column(level)] = values[keep]
    return pd.DataFrame(columns)  # one construction: a column set per level costs more


def _quantile_columns(
    group: Sequence[ServedForecasts], sizes: Sequence[int]
) -> dict[float, np.ndarray]:
    """One array per level any request of the group asked for; NaN in the other requests' rows.

    Empty when no request asked for quantiles: the log then stores nothing more than before.
    """
    levels = sorted({float(level) for s in group for level in s.quantiles or {}})
    columns: dict[float, np.ndarray] = {}
    for level in levels:
        parts = []
        for served, size in zip(group, sizes, strict=True):
            values = (served.quantiles or {}).get(level)
            if values is not None and len(values) != size:
                raise ValueError(f"quantiles[{level}]: {len(values)} values for {size} rows")
            parts.append(np.full(size, np.nan) if values is None else np.asarray(values, float))
        columns[level] = np.concatenate(parts) if parts else np.empty(0)
    return columns


def _in_order(frames: list[pd.DataFrame]) -> list[list[pd.DataFrame]]:
    """Actuals batches to write, in queue order: runs of plain batches, each correction alone.

    One write judges its rows together, and a key that a run holds twice with different values
    is rejected; only a correction can follow its key's first value into the queue, so a batch
    with corrections is written after everything before it and before everything after it.
    """
    runs: list[list[pd.DataFrame]] = []
    for frame in frames:
        if not runs or _corrects(frame) or _corrects(runs[-1][-1]):
            runs.append([frame])
        else:
            runs[-1].append(frame)
    return runs


def _corrects(frame: pd.DataFrame) -> bool:
    return CORRECTION in frame and bool(frame[CORRECTION].any())


@dataclass(frozen=True)
class RecorderStats:
    """Row counts since start: waiting, written, dropped (queue full) and failed writes."""

    queued_rows: int
    written_rows: int
    dropped_rows: int
    failed_rows: int


_Data = ServedForecasts | pd.DataFrame  # a served forecast, or accepted actuals
_Job = _Data | threading.Event | None  # Event: a flush mark; None: stop


class MonitoringRecorder:
    """A bounded queue of monitoring writes and the one thread that performs them.

    The writer lingers ``linger_s`` after the first queued batch, so the requests of that
    moment share one write per model version (measured: a 16-row write costs 5-7 ms of which
    little depends on the rows). ``request_time`` is then the latest request of the group.
    """

    def __init__(
        self, log: PredictionLogDB, *, max_pending_rows: int, linger_s: float = LINGER_S
    ) -> None:
        self.log = log
        self.max_pending_rows = max_pending_rows
        self.linger_s = linger_s
        self._jobs: deque[_Job] = deque()
        self._marks = 0  # flush marks and stops queued: the writer must not linger then
        self._cond = threading.Condition()
        self._pending = self._written = self._dropped = self._failed = 0
        self._closed = False
        self._last_drop_warning = -DROP_WARN_EVERY_S
        self._keeper: sqlite3.Connection | None = None  # used by the writer thread only
        self._thread = threading.Thread(target=self._run, name="rf-monitoring-log", daemon=True)
        self._thread.start()

    def record_predictions(self, served: ServedForecasts) -> bool:
        """Queue served forecasts; False (and counted) when the queue is full or closed."""
        return self._submit(served, len(served))

    def record_actuals(self, rows: pd.DataFrame) -> bool:
        """Queue actuals the history store accepted (date, store_nbr, family, sales).

        The log applies the same conflict policy (storage.conflict_policy): a row that differs
        from its stored actual is counted and logged there, never written over it, unless the
        row says ``correction`` (and ``request_id``): the history store applied it, so the log
        replaces its value too and audits it. One writer thread in queue order: a correction is
        written after the value it corrects. A dropped or failed batch is counted (stats) and
        logged; sending the same rows again brings the log in line (the history store answers
        them as duplicates, the log applies them).
        """
        return self._submit(rows, len(rows))

    def _submit(self, job: _Data, n_rows: int) -> bool:
        with self._cond:
            accepted = not self._closed and self._pending + n_rows <= self.max_pending_rows
            if accepted:
                self._jobs.append(job)
                self._pending += n_rows
                if len(self._jobs) == 1:  # wake an idle writer only: a lingering one waits
                    self._cond.notify()  # anyway, and each wake-up costs the GIL a switch
            else:
                self._dropped += n_rows
                dropped, pending = self._dropped, self._pending
        if not accepted:
            self._warn_dropped(n_rows, dropped, pending)
        return accepted

    def _warn_dropped(self, n_rows: int, dropped: int, pending: int) -> None:
        now = time.monotonic()
        level = logging.DEBUG
        if now - self._last_drop_warning >= DROP_WARN_EVERY_S:
            self._last_drop_warning, level = now, logging.WARNING
        logger.log(
            level,
            "monitoring queue full or closed: %d rows not logged (dropped so far %d, "
            "waiting %d, limit %d)",
            n_rows,
            dropped,
            pending,
            self.max_pending_rows,
        )

    def stats(self) -> RecorderStats:
        with self._cond:
            return RecorderStats(self._pending, self._written, self._dropped, self._failed)

    def flush(self, timeout_s: float) -> bool:
        """Wait until everything queued before this call is written (True) or the timeout."""
        mark = threading.Event()
        with self._cond:
            if not self._thread.is_alive():
                return not self._jobs
            self._enqueue_mark(mark)
        return mark.wait(timeout_s)

    def close(self, timeout_s: float) -> None:
        """Refuse new batches, write what is queued for up to ``timeout_s``, stop the thread."""
        with self._cond:
            self._closed = True
            self._enqueue_mark(None)
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            logger.warning("monitoring writer still busy after %.1f s; abandoned", timeout_s)

    def _enqueue_mark(self, mark: threading.Event | None) -> None:
        self._jobs.append(mark)
        self._marks += 1
        self._cond.notify()

    def _take_jobs(self) -> list[_Job]:
        """Wait for work, linger unless a flush or stop waits, then take everything queued."""
        with self._cond:
            while not self._jobs:
                self._cond.wait()
            deadline = time.monotonic() + self.linger_s
            while not self._marks and (remaining := deadline - time.monotonic()) > 0:
                self._cond.wait(remaining)
            jobs = list(self._jobs)
            self._jobs.clear()
            self._marks = 0
        return jobs

    def _run(self) -> None:
        while True:
            jobs = self._take_jobs()
            data = [job for job in jobs if isinstance(job, ServedForecasts | pd.DataFrame)]
            if data:
                self._write_all(data)
            for job in jobs:
                if isinstance(job, threading.Event):
                    job.set()
            if any(job is None for job in jobs):
                self._release()
                return

    def _write_all(self, data: list[_Data]) -> None:
        groups: dict[str, list[ServedForecasts]] = {}
        actuals: list[pd.DataFrame] = []
        for job in data:
            if isinstance(job, ServedForecasts):
                groups.setdefault(job.model_version, []).append(job)
            else:
                actuals.append(job)
        results = [(sum(map(len, g)), self._write_predictions(g)) for g in groups.values()]
        results += [(sum(map(len, run)), self._write_actuals(run)) for run in _in_order(actuals)]
        if any(ok for _, ok in results):
            self._hold_open()
        with self._cond:
            for n_rows, ok in results:
                self._pending -= n_rows
                if ok:
                    self._written += n_rows
                else:
                    self._failed += n_rows

    def _write_predictions(self, group: list[ServedForecasts]) -> bool:
        try:
            frame = served_frame(group)
            return frame.empty or self.log.log_predictions(
                frame,
                model_version=group[0].model_version,
                request_time=max(served.request_time for served in group),
            )
        except Exception:  # the writer thread must survive anything (promise 26)
            logger.exception("prediction log write failed; %d rows not logged", len(group))
            return False

    def _write_actuals(self, frames: list[pd.DataFrame]) -> bool:
        try:
            return self.log.ingest_actuals(pd.concat(frames, ignore_index=True)).ok
        except Exception:  # the writer thread must survive anything (promise 26)
            logger.exception("actuals not recorded for monitoring")
            return False

    def _hold_open(self) -> None:
        """Keep one idle connection open to the log.

        The log opens a connection per write; when the last connection to a WAL database
        closes, SQLite checkpoints and deletes the WAL (measured: a 16-row write took 24-32 ms
        so, 5-7 ms with this connection open). It holds no lock between writes.
        """
        if self._keeper is not None:
            return
        try:
            keeper = sqlite3.connect(self.log.db_path, timeout=self.log.timeout_s)
            keeper.execute("PRAGMA schema_version").fetchall()  # fetchall: the read txn ends
        except (sqlite3.Error, OSError):
            logger.debug("monitoring log keeper connection not opened", exc_info=True)
            return
        self._keeper = keeper

    def _release(self) -> None:
        if self._keeper is not None:
            self._keeper.close()
            self._keeper = None
