"""Per-series lags of a (series x day) array: flat shifts that never cross a series start."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def shift_days(values: FloatArray, lag: int) -> FloatArray:
    """Return ``values`` shifted ``lag`` days later along axis 1; NaN before the series start.

    ``values`` is a (series, day) panel, so row boundaries are series boundaries: a lag never
    reads another series. Column ``t`` of the result holds ``values[:, t - lag]``.
    """
    if lag < 1:
        raise ValueError(f"lag must be >= 1 so that day t never reads day t, got {lag}")
    out = np.full(values.shape, np.nan, dtype=np.float64)
    if lag < values.shape[1]:
        out[:, lag:] = values[:, :-lag]
    return out


def recent_days(values: FloatArray, day: int, span: int) -> FloatArray:
    """Columns ``day-1, day-2, ..., day-span`` of ``values``, newest first (NaN before column 0).

    One recursion step reads every lag and window from this one slice: column ``k`` is lag
    ``k + 1``.
    """
    out = np.full((values.shape[0], span), np.nan, dtype=np.float64)
    n = min(span, day)
    if n > 0:
        out[:, :n] = values[:, day - n : day][:, ::-1]
    return out
