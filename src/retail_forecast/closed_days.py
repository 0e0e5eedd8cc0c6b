"""Which days the stores are closed: a data set's closures, the one definition every stage reads.

A closed day is ``is_closed`` in the canonical frame (schema.IS_CLOSED): an ``open`` 0 row, a
``Closed`` row of the holidays table for the store's scope, or a day on which the whole chain
has no row at all (data_processing/clean.py). Models answer 0 on it, the API ``closed: true``,
and features carry the last open day's demand over it (a closure is not a demand of 0).

Days after the history have no rows to say so; the closures a data set repeats every year (the
same calendar day closed in every store, in every year its history covers, at least
:data:`MIN_YEARS` times) are learned from the history (:func:`infer_yearly_closures`), recorded
in the bundle and applied to the days to forecast (:class:`YearlyClosures`). Nothing here knows
a date: a data set without such closures has none.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from retail_forecast.errors import ArtifactError
from retail_forecast.schema import DATE, IS_CLOSED

MIN_YEARS: Final = 2
"""A calendar day is a yearly closure only when the history shows it closed at least this often."""

MonthDay = tuple[int, int]


@dataclass(frozen=True)
class YearlyClosures:
    """Calendar days (month, day) on which every store of the data set is closed, every year."""

    month_days: tuple[MonthDay, ...] = ()

    def __post_init__(self) -> None:
        for month, day in self.month_days:
            try:
                dt.date(2000, month, day)  # a leap year: 29 February is a calendar day
            except (TypeError, ValueError):
                raise ValueError(f"yearly closure {(month, day)!r} is no calendar day") from None

    def __bool__(self) -> bool:
        return bool(self.month_days)

    def mask(
        self, dates: pd.DatetimeIndex | pd.Series | npt.NDArray[np.datetime64]
    ) -> npt.NDArray[np.bool_]:
        """Flag the closed days among ``dates`` (any time of day counts as its date).

        NumPy date arithmetic: no DatetimeIndex is built (serving calls this per request).
        """
        days = np.asarray(dates, dtype="datetime64[D]")
        out = np.zeros(days.shape, dtype=np.bool_)
        if not self.month_days:
            return out
        months = days.astype("datetime64[M]")
        month = months.astype(np.int64) % 12 + 1  # months since 1970-01: January is 0
        day = (days - months).astype(np.int64) + 1
        for m, d in self.month_days:
            out |= (month == m) & (day == d)
        return out

    def is_closed(self, day: dt.date | np.datetime64) -> bool:
        """:meth:`mask` for one date (a ``date``, ``Timestamp`` or ``datetime64``).

        Compares month and day directly: serving checks every day of every request, and the
        array form on one date costs an order of magnitude more (NumPy's per-call overhead).
        """
        if not self.month_days:
            return False
        date = day.astype("datetime64[D]").item() if isinstance(day, np.datetime64) else day
        return (date.month, date.day) in self.month_days

    def to_json(self) -> list[str]:
        """``["12-25", ...]``: how the bundle records them (manifest domain)."""
        return [f"{m:02d}-{d:02d}" for m, d in self.month_days]

    @classmethod
    def from_json(cls, value: object, *, source: object = "bundle") -> YearlyClosures:
        """Read :meth:`to_json`'s list; ArtifactError naming ``source`` if malformed."""
        if not isinstance(value, list):
            raise ArtifactError(f"{source}: yearly_closures must be a list, got {value!r}")
        out: list[MonthDay] = []
        for item in value:
            try:
                month, day = (int(part) for part in str(item).split("-"))
                out.append((month, day))
            except ValueError:
                raise ArtifactError(
                    f"{source}: yearly_closures item {item!r} is not MM-DD"
                ) from None
        try:
            return cls(tuple(sorted(out)))
        except ValueError as exc:
            raise ArtifactError(f"{source}: {exc}") from None


NO_YEARLY_CLOSURES: Final = YearlyClosures()


def infer_yearly_closures(
    chain_closed: npt.NDArray[np.bool_],
    dates: pd.DatetimeIndex | npt.NDArray[np.datetime64],
    *,
    min_years: int = MIN_YEARS,
) -> YearlyClosures:
    """Return the calendar days closed in every year of ``dates`` that holds them.

    ``chain_closed[k]``: every series is closed on ``dates[k]`` (dates are consecutive days).
    A calendar day qualifies when the history holds it at least ``min_years`` times and every
    one of them is closed chain-wide; a one-off closure (a storm, a strike) does not repeat.
    """
    days = np.asarray(dates, dtype="datetime64[D]")
    if len(days) == 0:
        return NO_YEARLY_CLOSURES
    months = days.astype("datetime64[M]")
    key = (months.astype(np.int64) % 12 + 1) * 100 + (days - months).astype(np.int64) + 1
    seen = np.bincount(key, minlength=1300)
    shut = np.bincount(key, weights=chain_closed.astype(np.float64), minlength=1300)
    found = np.flatnonzero((seen >= min_years) & (shut == seen))
    return YearlyClosures(tuple((int(k) // 100, int(k) % 100) for k in found))


def frame_yearly_closures(sales: pd.DataFrame) -> YearlyClosures:
    """:func:`infer_yearly_closures` of a canonical frame (every series has every day)."""
    if len(sales) == 0:
        return NO_YEARLY_CLOSURES
    closed = sales.groupby(DATE, sort=True, observed=True)[IS_CLOSED].all()
    return infer_yearly_closures(closed.to_numpy(dtype=np.bool_), closed.index.to_numpy())


def closed_rows(frame: pd.DataFrame) -> npt.NDArray[np.bool_]:
    """Flag the closed rows of a frame: its ``is_closed`` column (none closed without one)."""
    if IS_CLOSED in frame.columns:
        return np.asarray(frame[IS_CLOSED].to_numpy(dtype=np.bool_), dtype=np.bool_)
    return np.zeros(len(frame), dtype=np.bool_)
