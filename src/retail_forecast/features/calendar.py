"""Calendar features of forecast days: day of week, month, year, holidays; date arithmetic.

Which days are closed is :mod:`retail_forecast.closed_days`.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import numpy.typing as npt
import pandas as pd

EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()  # datetime64's day 0


def calendar_columns(dates: pd.DatetimeIndex) -> dict[str, npt.NDArray[np.float64]]:
    """Return day_of_week (Monday=0, as pandas and mlforecast), month and year per date."""
    return {
        "day_of_week": dates.dayofweek.to_numpy(dtype=np.float64),
        "month": dates.month.to_numpy(dtype=np.float64),
        "year": dates.year.to_numpy(dtype=np.float64),
    }


def days_after(
    dates: pd.DatetimeIndex | pd.Series | npt.NDArray[np.datetime64], origin: pd.Timestamp
) -> npt.NDArray[np.int64]:
    """Whole days from ``origin`` to each date (1 = the day after), by NumPy date arithmetic."""
    days = np.asarray(dates, dtype="datetime64[D]")
    return (days - np.datetime64(origin.date(), "D")).astype(np.int64)


def from_ordinals(ordinals: npt.ArrayLike) -> npt.NDArray[np.datetime64]:
    """Proleptic Gregorian ordinals (``date.toordinal()``) as datetime64[ns] dates.

    The fast way from ``datetime.date`` objects: NumPy converts date objects ~25x slower.
    """
    days = np.asarray(ordinals, dtype=np.int64) - EPOCH_ORDINAL
    return days.astype("datetime64[D]").astype("datetime64[ns]")


HOLIDAY_TYPES = ("Holiday", "Transfer", "Additional", "Bridge")


def national_holiday_dates(holidays: pd.DataFrame | None) -> list[str]:
    """ISO dates of national days off from Kaggle's holidays_events table.

    A holiday moved to another day (``transferred`` True) is not a day off on its own date; its
    ``Transfer`` row marks the day actually taken. ``Work Day`` rows (Saturdays worked to pay
    back a bridge) and events are not days off.
    """
    if holidays is None or holidays.empty:
        return []
    transferred = holidays["transferred"].astype(str).str.lower().isin(["true", "1"])
    mask = (
        (holidays["locale"] == "National")
        & holidays["type"].isin(HOLIDAY_TYPES)
        & ~transferred.to_numpy()
    )
    dates = pd.to_datetime(holidays.loc[mask, "date"]).dt.normalize()
    return sorted({str(d.date()) for d in dates})


def extra_calendar_columns(
    dates: pd.DatetimeIndex, *, holiday_dates: list[str], names: list[str]
) -> dict[str, npt.NDArray[np.float64]]:
    """Day of month (paydays fall on the 15th and the month end) and the national-holiday flag."""
    out: dict[str, npt.NDArray[np.float64]] = {}
    if "day_of_month" in names:
        out["day_of_month"] = dates.day.to_numpy(dtype=np.float64)
    if "is_national_holiday" in names:
        flags = dates.normalize().isin(pd.DatetimeIndex(pd.to_datetime(holiday_dates)))
        out["is_national_holiday"] = np.asarray(flags, dtype=np.float64)
    return out
