"""The service's SQLite state: the serving history store, the prediction log, one conflict policy.

Contract for an actual already stored. An actual (observed daily sales) is keyed by
``(date, store_nbr, family)``. Both stores that keep actuals, the serving history
(:class:`HistoryStore`) and the prediction log (:class:`PredictionLogDB`), judge a received row
by one policy, :mod:`retail_forecast.storage.conflict_policy`: it is *new* when no value is
stored for its key (it is stored), a *duplicate* when its values equal the stored ones (sales
within ``SALES_TOLERANCE``, onpromotion equal where the store keeps it: an idempotent no-op, so
re-sending a batch is always safe), and a *conflict* when a value differs: the stored value is
kept, and nothing ever writes over a stored actual. Within one batch, identical repeats of a key
collapse to one row and a key repeated with different values is invalid. Correcting a stored
actual is not supported: a conflict is reported, never resolved by either store.

How each store answers a batch that holds conflicts:

- :class:`HistoryStore` (the lags the served forecasts read) refuses the whole batch:
  ``ConflictError`` naming the rows (HTTP 409 on ``POST /api/v1/actuals``), nothing of the batch
  applied; an invalid batch is a ``DataValidationError`` (422). Rows older than its window
  cannot be checked and are skipped (counted). Each append is one transaction (WAL,
  ``synchronous=FULL``): an acknowledged append survives a crash.
- :class:`PredictionLogDB` (served forecasts and actuals, for accuracy monitoring) is fed the
  actuals the history store accepted and ``retail-forecast monitor ingest-actuals``: it stores
  the batch's new rows, keeps the stored value of each conflicting row and counts and names the
  conflicts (``IngestResult.conflicts``, logged at WARNING; the command exits 1), so that one
  conflicting row does not cost monitoring the rest; invalid rows are rejected and counted.

Modules: ``history`` (HistoryStore and its snapshots), ``history_rows`` (validating, merging and
completing days of actuals, no I/O), ``history_db`` (the history's SQLite tables),
``prediction_log_db`` (the prediction log's tables), ``conflict_policy`` (the rule above).
"""

from retail_forecast.storage.conflict_policy import SALES_TOLERANCE, agrees
from retail_forecast.storage.history import AppendResult, HistorySnapshot, HistoryStore
from retail_forecast.storage.prediction_log_db import IngestResult, PredictionLogDB

__all__ = [
    "SALES_TOLERANCE",
    "AppendResult",
    "HistorySnapshot",
    "HistoryStore",
    "IngestResult",
    "PredictionLogDB",
    "agrees",
]
