"""The service's SQLite state: the serving history store, the prediction log, one conflict policy.

Contract for an actual already stored. An actual (observed daily sales) is keyed by
``(date, store_nbr, family)``. Both stores that keep actuals, the serving history
(:class:`HistoryStore`) and the prediction log (:class:`PredictionLogDB`), judge a received row
by one policy, :mod:`retail_forecast.storage.conflict_policy`: it is *new* when no value is
stored for its key (it is stored), a *duplicate* when its values equal the stored ones (sales
within ``SALES_TOLERANCE``, onpromotion equal where the store keeps it: an idempotent no-op, so
re-sending a batch is always safe), a *correction* when a value differs and the row says
``"correction": true`` (the received value replaces the stored one and the store writes an
audit row to its ``corrections`` table: key, old and new value, time, request id; in the same
transaction), and a *conflict* when a value differs without that flag: the stored value is
kept. Nothing else ever writes over a stored actual. Within one batch, identical repeats of a
key collapse to one row and a key repeated with different values is invalid.

Corrections reach both stores: the history store applies them (the lags every later forecast
reads) and the prediction log is fed the same accepted rows, flags included (the actuals its
accuracy scores), so both hold the corrected value and both audit it. The history store can
correct only what it holds, its window of complete days and the pending days after it: a
correction older than the window is refused, as is one of a closed day.

Plausibility (:mod:`retail_forecast.storage.plausibility`): sales above ``MAX_SALES`` are
invalid in both stores. The history store also refuses a new or corrected value above
``SpikeRule`` x the series' highest sales in its window unless the row says
``"confirm_spike": true``; a duplicate is never judged again.

How each store answers a batch that holds conflicts or refused rows:

- :class:`HistoryStore` (the lags the served forecasts read) refuses the whole batch:
  ``ConflictError`` naming the rows (HTTP 409 on ``POST /api/v1/actuals``), nothing of the batch
  applied; an invalid batch is a ``DataValidationError`` (422), and a row refused by rule (an
  implausible value, a correction it cannot apply) a ``RefusedRowsError`` naming each row's
  position and field (422). Rows older than its window cannot be checked and are skipped
  (counted). Each append is one transaction (WAL, ``synchronous=FULL``): an acknowledged append
  survives a crash.
- :class:`PredictionLogDB` (served forecasts and actuals, for accuracy monitoring) is fed the
  actuals the history store accepted and ``retail-forecast monitor ingest-actuals``: it stores
  the batch's new rows and corrections, keeps the stored value of each conflicting row and
  counts and names the conflicts (``IngestResult.conflicts``, logged at WARNING; the command
  exits 1), so that one conflicting row does not cost monitoring the rest; invalid rows are
  rejected and counted.

Modules: ``history`` (HistoryStore), ``history_snapshot`` (its immutable states),
``history_rows`` (validating and completing days of actuals, no I/O), ``history_merge``
(judging a batch against what is stored), ``history_db`` (the history's SQLite tables),
``prediction_log_db`` (the prediction log's tables), ``prediction_log_rows`` (its records),
``prediction_quantiles`` (the quantiles it logs), ``conflict_policy`` (the rule above),
``corrections`` (the audit table), ``plausibility`` (the ceiling and the spike rule).
"""

from retail_forecast.storage.conflict_policy import CORRECTION, SALES_TOLERANCE, agrees
from retail_forecast.storage.corrections import REQUEST_ID, Correction
from retail_forecast.storage.history import AppendResult, HistorySnapshot, HistoryStore
from retail_forecast.storage.plausibility import (
    CONFIRM_SPIKE,
    MAX_SALES,
    RefusedRowsError,
    RowProblem,
    SpikeRule,
)
from retail_forecast.storage.prediction_log_db import IngestResult, PredictionLogDB

__all__ = [
    "CONFIRM_SPIKE",
    "CORRECTION",
    "MAX_SALES",
    "REQUEST_ID",
    "SALES_TOLERANCE",
    "AppendResult",
    "Correction",
    "HistorySnapshot",
    "HistoryStore",
    "IngestResult",
    "PredictionLogDB",
    "RefusedRowsError",
    "RowProblem",
    "SpikeRule",
    "agrees",
]
