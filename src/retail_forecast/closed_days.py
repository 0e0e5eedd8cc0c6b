"""Which days the stores are closed: the one definition of the closed-day rule.

Every stage asks here (filling the panel, features, models, the history store, the API), so
the rule lives in the core, below all of them. On a closed day a store has no sales by
convention: the panel fills it ``is_closed`` with sales 0, models answer 0 and the API answers
``closed: true``.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

CLOSED_MONTH_DAY: Final = (12, 25)
"""(month, day) of the one yearly closure: every Favorita store is shut on 25 December.

A fact of the development data set, not a law of retail: this constant is the one place a data
set's own closures (an ``open`` flag, closed days in its holiday table) will replace.
"""

_MONTH, _DAY = CLOSED_MONTH_DAY


def is_closed_day(
    dates: pd.DatetimeIndex | pd.Series | npt.NDArray[np.datetime64],
) -> npt.NDArray[np.bool_]:
    """Flag the closed days among ``dates`` (any time of day counts as its date).

    NumPy date arithmetic: no DatetimeIndex is built (serving calls this per request).
    """
    days = np.asarray(dates, dtype="datetime64[D]")
    months = days.astype("datetime64[M]")
    in_month = months.astype(np.int64) % 12 == _MONTH - 1  # months since 1970-01: January is 0
    return np.asarray(in_month & ((days - months).astype(np.int64) == _DAY - 1), dtype=np.bool_)


def is_closed_date(day: dt.date | np.datetime64) -> bool:
    """:func:`is_closed_day` for one date (a ``date``, ``Timestamp`` or ``datetime64``).

    Compares month and day directly: serving checks every day of every request, and the array
    form on one date costs an order of magnitude more (NumPy's per-call overhead).
    """
    date = day.astype("datetime64[D]").item() if isinstance(day, np.datetime64) else day
    return bool(date.month == _MONTH and date.day == _DAY)


def closed_rows(frame: pd.DataFrame) -> npt.NDArray[np.bool_]:
    """Flag the closed rows of a frame of (store, day) rows: the date rule or its own flag.

    A data set's own closures (an ``open`` 0 row, a Closed holiday for the store's scope) are
    carried as an ``is_closed`` column (schema.IS_CLOSED); a frame without one has the rule only.
    """
    closed = is_closed_day(frame["date"].to_numpy())
    if "is_closed" in frame.columns:
        closed |= frame["is_closed"].to_numpy(dtype=np.bool_)
    return closed


def data_closures(
    closed: npt.NDArray[np.bool_], dates: pd.DatetimeIndex | npt.NDArray[np.datetime64]
) -> npt.NDArray[np.bool_]:
    """Return the closed cells of a (series, day) mask that the date rule does not explain.

    Features carry the last open day's demand over these (a closure is not a demand of 0); the
    rule's own days keep the sales 0 they always had, so a panel without closures of its own
    (the default, Favorita) has exactly the features it had before.
    """
    return np.asarray(closed & ~is_closed_day(np.asarray(dates))[None, :], dtype=np.bool_)
