"""HistorySnapshot: one immutable state of the history store, and how an append makes the next.

A snapshot holds the window of complete days, the pending days after it and, per series, the
highest sales of the window (``levels``: what the plausibility rule reads, kept here so that
checking a batch is O(rows); recomputed only when the window's values change).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd

from retail_forecast.schema import DATE, FAMILY, IS_CLOSED, PROMO, STORE, TARGET, SeriesKey
from retail_forecast.storage.history_db import StoredState
from retail_forecast.storage.history_rows import DAY, PendingDay, Window
from retail_forecast.storage.plausibility import series_levels

__all__ = ["HistorySnapshot", "advance", "snapshot_of", "with_window"]

_T = TypeVar("_T", bound=np.generic)


@dataclasses.dataclass(frozen=True)
class HistorySnapshot:
    """A consistent read-only view: arrays ``[n_series, len(dates)]`` aligned with ``dates``."""

    series: tuple[SeriesKey, ...]
    families: tuple[str, ...]
    dates: npt.NDArray[np.datetime64]
    sales: npt.NDArray[np.float64]
    onpromotion: npt.NDArray[np.int64]
    is_closed: npt.NDArray[np.bool_]
    pending: Mapping[np.datetime64, PendingDay]
    index: Mapping[SeriesKey, int]
    levels: npt.NDArray[np.float64]  # each series' highest sales over the window

    @property
    def history_end(self) -> pd.Timestamp:
        return pd.Timestamp(self.dates[-1])

    @functools.cached_property
    def date_index(self) -> pd.DatetimeIndex:
        """``dates`` as the canonical frame's DatetimeIndex (built once per snapshot)."""
        return pd.DatetimeIndex(self.dates.astype("datetime64[ns]"), name=DATE)

    @property
    def window(self) -> Window:
        return Window(
            dates=self.dates, sales=self.sales, promo=self.onpromotion, closed=self.is_closed
        )

    @property
    def pending_dates(self) -> tuple[pd.Timestamp, ...]:
        return tuple(pd.Timestamp(day) for day in sorted(self.pending))

    def to_frame(self) -> pd.DataFrame:
        """Return the complete days as a canonical sales frame (pending rows excluded)."""
        n_series, n_days = self.sales.shape
        stores = np.array([store for store, _ in self.series], dtype=np.int64)
        families = pd.Categorical(
            np.repeat([family for _, family in self.series], n_days), categories=self.families
        )
        return pd.DataFrame(
            {
                DATE: np.tile(self.dates.astype("datetime64[ns]"), n_series),
                STORE: np.repeat(stores, n_days),
                FAMILY: families,
                TARGET: self.sales.reshape(-1),
                PROMO: self.onpromotion.reshape(-1),
                IS_CLOSED: self.is_closed.reshape(-1),
            }
        )


def readonly(array: npt.NDArray[_T]) -> npt.NDArray[_T]:
    array.flags.writeable = False
    return array


def snapshot_of(state: StoredState) -> HistorySnapshot:
    window = state.window
    return HistorySnapshot(
        series=state.series,
        families=state.families,
        dates=readonly(window.dates),
        sales=readonly(window.sales),
        onpromotion=readonly(window.promo),
        is_closed=readonly(window.closed),
        pending=state.pending,
        index={key: i for i, key in enumerate(state.series)},
        levels=series_levels(window.sales),
    )


def with_window(before: HistorySnapshot, window: Window) -> HistorySnapshot:
    """``before`` with the window's values replaced (corrections); the same dates."""
    if window.sales is before.sales and window.promo is before.onpromotion:
        return before
    return dataclasses.replace(
        before,
        sales=readonly(window.sales),
        onpromotion=readonly(window.promo),
        levels=series_levels(window.sales),
    )


def advance(
    before: HistorySnapshot,
    pending: dict[np.datetime64, PendingDay],
    completed: list[PendingDay],
    *,
    n_days: int,
) -> HistorySnapshot:
    """Move the completed days from ``pending`` into the window of a new snapshot."""
    new_end = before.dates[-1] + DAY * len(completed)
    remaining = {day: p for day, p in pending.items() if day > new_end}
    if not completed:
        return dataclasses.replace(before, pending=remaining)
    block = len(completed)

    def extend(old: npt.NDArray[_T], new: list[npt.NDArray[_T]]) -> npt.NDArray[_T]:
        return readonly(np.concatenate([old, np.stack(new, axis=1)], axis=1)[:, -n_days:].copy())

    new_dates = before.dates[-1] + DAY * np.arange(1, block + 1)
    sales = extend(before.sales, [p.sales for p in completed])
    return dataclasses.replace(
        before,
        dates=readonly(np.concatenate([before.dates, new_dates])[-n_days:].copy()),
        sales=sales,
        onpromotion=extend(before.onpromotion, [p.promo for p in completed]),
        is_closed=extend(before.is_closed, [p.closed for p in completed]),
        pending=remaining,
        levels=series_levels(sales),
    )
