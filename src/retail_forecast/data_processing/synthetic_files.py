"""Arrays of the synthetic generator -> rows of the Kaggle files (sales, transactions, oil)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from retail_forecast.data_processing.synthetic_tables import FAMILY_TABLE
from retail_forecast.schema import DATE, FAMILY, ID, STORE

# Sales per transaction of a full 33-family store (real data: ~12,000 units / ~1,700 tickets).
UNITS_PER_TICKET = 7.0
FloatArray = npt.NDArray[np.float64]


def date_strings(days: pd.DatetimeIndex) -> npt.NDArray[np.object_]:
    return np.asarray(days.strftime("%Y-%m-%d"), dtype=object)


def oil_frame(days: pd.DatetimeIndex, rng: np.random.Generator) -> pd.DataFrame:
    """Weekday oil prices: a mean-reverting log random walk, ~3.5 % blanks and 1 January blank."""
    weekdays = days[days.dayofweek < 5]
    steps = rng.normal(0.0, 0.02, size=len(weekdays))
    log_price = np.empty(len(weekdays))
    level = np.log(93.0)
    for i, step in enumerate(steps):
        level += step - 0.002 * (level - np.log(60.0))
        log_price[i] = level
    price = np.round(np.exp(log_price), 2)
    blank = (rng.random(len(weekdays)) < 0.035) | np.asarray(
        (weekdays.month == 1) & (weekdays.day == 1)
    )
    price[blank] = np.nan
    return pd.DataFrame({"date": date_strings(weekdays), "dcoilwtico": price})


def transactions_frame(
    sales: FloatArray,
    days: pd.DatetimeIndex,
    *,
    is_train: npt.NDArray[np.bool_],
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Tickets per open store-day, proportional to its sales; closed store-days have no row."""
    n_fam = sales.shape[1]
    total = sales.sum(axis=1) * (len(FAMILY_TABLE) / n_fam)
    noise = rng.lognormal(0.0, 0.05, size=total.shape)
    tickets = np.maximum(np.round(total / UNITS_PER_TICKET * noise), 1).astype(np.int64)
    day_idx, store_idx = np.nonzero(((total > 0) & is_train[None, :]).T)
    return pd.DataFrame(
        {
            "date": date_strings(days)[day_idx],
            "store_nbr": (store_idx + 1).astype(np.int64),
            "transactions": tickets[store_idx, day_idx],
        }
    )


def long_frame(
    values: dict[str, npt.NDArray[np.generic]],
    days: pd.DatetimeIndex,
    fams: list[str],
    *,
    first_id: int,
    keep: npt.NDArray[np.bool_] | None = None,
) -> pd.DataFrame:
    """Flatten (store, family, day) arrays to rows in Kaggle order: date, store as text, family.

    ``keep`` (stores x families x days) drops rows (a gap, a closure without an open column);
    the ids stay consecutive from ``first_id``.
    """
    n_stores, n_fam, n_days = next(iter(values.values())).shape
    order = np.array(sorted(range(n_stores), key=lambda i: str(i + 1)))
    columns: dict[str, npt.NDArray[np.generic]] = {
        ID: np.arange(first_id, first_id + n_stores * n_fam * n_days, dtype=np.int64),
        DATE: np.repeat(date_strings(days), n_stores * n_fam),
        STORE: np.tile(np.repeat(order + 1, n_fam), n_days).astype(np.int64),
        FAMILY: np.tile(np.asarray(fams, dtype=object), n_stores * n_days),
    }
    for name, array in values.items():
        columns[name] = array[order].transpose(2, 0, 1).reshape(-1)
    frame = pd.DataFrame(columns)
    if keep is None or keep.all():
        return frame
    rows = np.flatnonzero(keep[order].transpose(2, 0, 1).reshape(-1))
    frame = frame.iloc[rows].reset_index(drop=True)
    frame[ID] = np.arange(first_id, first_id + len(frame), dtype=np.int64)
    return frame
