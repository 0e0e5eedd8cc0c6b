"""The plausibility rule for an actual: a hard ceiling, and a bound from the series' own history.

Two limits keep a typo (``29870000000`` for ``2987``) out of the lags every later forecast reads:

- :data:`MAX_SALES`, the hard ceiling of every stored value, confirmed or not. It is far above any
  real daily sales of one family in one store (the Favorita maximum is ~125,000) and keeps
  ``log1p`` of every value small (< 21), so neither the features nor a model's ``expm1`` can
  overflow, however the models extrapolate.
- :class:`SpikeRule`, the series' own bound: a value the store would write (a new actual or a
  correction) above ``factor x max(the series' highest sales in the stored window, floor)`` is
  refused unless its row says ``confirm_spike`` (a real spike: a store opening, a bulk order).
  The floor keeps near-zero series from refusing their first real sales. On the Favorita data
  (120-day window, factor 10, floor 10) two years of days trip it ~20 times outside the two
  store openings, each a genuine outlier worth a confirmation.

The bound reads the window's per-series maxima (:func:`series_levels`, computed when the window
changes), so checking a batch is O(rows). A refused row is a :class:`RefusedRowsError`: a
``DataValidationError`` (HTTP 422) that names each row's position, field and bound, so the API
can answer ``rows[3].sales`` with the allowed maximum. Resending a stored value (a confirmed
spike included) is a duplicate and never checked: re-sending a batch stays safe.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final, Self

import numpy as np
import numpy.typing as npt

from retail_forecast.errors import DataValidationError

if TYPE_CHECKING:
    from retail_forecast.config import ActualsConfig

MAX_SALES: Final = 1e9
"""Hard ceiling of an actual's sales (inclusive); above it a row is invalid, confirmed or not."""

CONFIRM_SPIKE: Final = "confirm_spike"
"""Optional boolean column of actuals: the value is real although the rule would refuse it."""

MAX_LISTED: Final = 1000  # refused rows named in one error; the count is always complete


@dataclasses.dataclass(frozen=True)
class SpikeRule:
    """``factor x max(series maximum over the window, floor)``: the largest unconfirmed value."""

    factor: float = 10.0
    floor: float = 10.0

    @classmethod
    def from_config(cls, config: ActualsConfig) -> Self:
        return cls(factor=config.spike_factor, floor=config.spike_floor)

    def bounds(self, levels: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Return the largest unconfirmed value of series whose window maxima are ``levels``."""
        return np.minimum(self.factor * np.maximum(levels, self.floor), MAX_SALES)

    @property
    def lowest_bound(self) -> float:
        """A value every series accepts unconfirmed (a series that never sold: the floor)."""
        return float(min(self.factor * self.floor, MAX_SALES))


@dataclasses.dataclass(frozen=True)
class RowProblem:
    """Why the store refuses one row: its position in the given rows, the field, the rule."""

    position: int
    field: str
    type: str
    message: str
    bound: float | None = None


class RefusedRowsError(DataValidationError):
    """Rows a store refuses by rule (nothing of the batch applied), each named (HTTP 422)."""

    def __init__(self, problems: Sequence[RowProblem]) -> None:
        self.problems = tuple(problems)
        listed = "; ".join(
            f"row {p.position} {p.field}: {p.message}" for p in self.problems[:MAX_LISTED]
        )
        super().__init__(f"{len(self.problems)} actuals refused, nothing applied: {listed}")


def series_levels(sales: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Each series' highest sales over the window (``sales``: series x days)."""
    levels: npt.NDArray[np.float64] = sales.max(axis=1) if sales.shape[1] else np.zeros(len(sales))
    levels.flags.writeable = False
    return levels


def implausible_rows(
    *,
    sales: npt.NDArray[np.float64],
    levels: npt.NDArray[np.float64],
    confirmed: npt.NDArray[np.bool_],
    rule: SpikeRule,
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]:
    """Return the indices of the unconfirmed values above their series' bound, and the bounds.

    ``sales``, ``levels`` (the window maximum of each value's series) and ``confirmed`` are
    aligned: one entry per value the store would write.
    """
    bounds = rule.bounds(levels)
    refused = np.flatnonzero((sales > bounds) & ~confirmed)
    return refused, bounds[refused]


def spike_problem(
    position: int,
    *,
    sales: float,
    bound: float,
    level: float,
    day: dt.date | np.datetime64,
    series: tuple[int, str],
    rule: SpikeRule,
    n_days: int,
) -> RowProblem:
    """Describe one implausible value for a 422: the value, its bound and how it was computed."""
    store, family = series
    message = (
        f"sales {sales:.6g} on {day} for store_nbr={store} family={family!r} is implausible:"
        f" at most {bound:.6g} = {rule.factor:g} x max(the series' highest sales {level:.6g}"
        f" over the last {n_days} stored days, {rule.floor:g}); if the value is real, send the"
        ' row again with "confirm_spike": true'
    )
    return RowProblem(position, "sales", "sales_implausible", message, bound)
