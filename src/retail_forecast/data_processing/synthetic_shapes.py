"""Other panel shapes of the synthetic generator: closures, regional holidays, gaps, presets.

How a shape shows in the Kaggle layout (the data contract reads the same conventions):

- closed store-days, with an ``open`` column (``closed_sundays``): train.csv and test.csv gain a
  last column ``open`` (1 open, 0 closed); a closed day is a row with ``open 0``, ``sales 0`` and
  ``onpromotion 0``, and every other closed store-day of the data set is such a row too;
- closed store-days without an ``open`` column: the row is absent from train.csv (as the real
  data's 25 December is) and holidays_events.csv says why with a row of type ``Closed``
  (:data:`CLOSED_TYPE`) whose locale scopes it: ``National`` (every store), ``Regional``
  (``locale_name`` = the store's ``state`` in stores.csv) or ``Local`` (the store's ``city``);
- regional holidays (``regional_holidays``): more ``Regional``/``Local`` rows in
  holidays_events.csv that lift the sales of the stores of that state or city, plus one
  ``Closed`` regional day per state and year;
- a gap (``gap_stores``): those stores have no row at all, in any file, for ``gap_days`` days
  in the middle of their history (not a closure: nothing says why).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from retail_forecast.data_processing.ingest import TRAIN_PARTS_DIR
from retail_forecast.data_processing.panel_shape import CLOSED_TYPE, OPEN
from retail_forecast.data_processing.synthetic_files import date_strings, long_frame
from retail_forecast.schema import PROMO, TARGET, TEST_COLUMNS, TRAIN_COLUMNS

if TYPE_CHECKING:  # the generator's module imports this one
    from retail_forecast.data_processing.synthetic import SyntheticConfig

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]

__all__ = [
    "CLOSED_TYPE",
    "OPEN",
    "SHAPES",
    "TRAIN_PARTS_DIR",
    "closed_store_days",
    "gap_mask",
    "regional_rows",
]

SUNDAY: Final = 6
# Log-lift of one of the shape's extra regional or local holidays on its stores' sales
# (on top of the generator's usual small local effect): a festival week-day, not a day off.
REGIONAL_LIFT: Final = 0.3
EXTRA_REGIONAL_PER_YEAR: Final = 3
EXTRA_LOCAL_PER_YEAR: Final = 2

# --shape presets: SyntheticConfig fields over the default (favorita-like = today's default).
SHAPES: Final[dict[str, dict[str, Any]]] = {
    "favorita-like": {},
    "closed-sundays": {"closed_sundays": True},
    "regional": {"regional_holidays": True},
    "gaps": {"gap_stores": 3},
    "one-family": {"family_list": ("GROCERY I",)},
    "recent-years": {"start_date": dt.date(2019, 1, 1), "n_days": 1400},
    "long-horizon": {"horizon": 28},
    # M5's size (30,490 series x 1,941 days = 59 M rows), store x item: train_parts/ parts
    "m5-sized": {"n_stores": 10, "items_per_store": 3049, "n_days": 1941},
}


def regional_rows(
    years: range,
    *,
    cities: list[str],
    states: list[str],
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Extra Regional/Local holidays (each a sales lift) and one Closed day per state and year."""
    rows: list[tuple[dt.date, str, str, str, str, bool]] = []
    for year in years:
        origin = dt.date(year, 1, 1)
        for state in states:
            for doy in rng.integers(1, 366, size=EXTRA_REGIONAL_PER_YEAR):
                day = origin + dt.timedelta(days=int(doy) - 1)
                rows.append((day, "Holiday", "Regional", state, f"Fiesta de {state}", False))
            closed = origin + dt.timedelta(days=int(rng.integers(1, 366)) - 1)
            rows.append((closed, CLOSED_TYPE, "Regional", state, f"Cierre de {state}", False))
        for city in cities:
            for doy in rng.integers(1, 366, size=EXTRA_LOCAL_PER_YEAR):
                day = origin + dt.timedelta(days=int(doy) - 1)
                rows.append((day, "Holiday", "Local", city, f"Fiesta de {city}", False))
    return pd.DataFrame(
        rows, columns=["date", "type", "locale", "locale_name", "description", "transferred"]
    )


def _store_hits(rows: pd.DataFrame, days: pd.DatetimeIndex, stores: pd.DataFrame) -> BoolArray:
    """Flag stores x days each row covers (National all, Regional by state, Local by city)."""
    out = np.zeros((len(stores), len(days)), dtype=bool)
    pos = pd.Series(np.arange(len(days)), index=days)
    for locale, name, date in zip(rows["locale"], rows["locale_name"], rows["date"], strict=True):
        at = pos.get(pd.Timestamp(date))
        if at is None:
            continue
        if locale == "National":
            out[:, int(at)] = True
        else:
            column = "state" if locale == "Regional" else "city"
            out[(stores[column] == name).to_numpy(), int(at)] = True
    return out


def regional_lift(extra: pd.DataFrame, days: pd.DatetimeIndex, stores: pd.DataFrame) -> FloatArray:
    """Return the stores x days log-lift of the extra (non-Closed) regional/local holidays."""
    festive = extra[extra["type"] != CLOSED_TYPE]
    return REGIONAL_LIFT * _store_hits(festive, days, stores).astype(np.float64)


def closed_store_days(
    days: pd.DatetimeIndex,
    stores: pd.DataFrame,
    holidays: pd.DataFrame,
    *,
    closed_sundays: bool,
) -> BoolArray:
    """Flag stores x days closed by the Sunday rule or by a Closed row of the holidays table."""
    closed = _store_hits(holidays[holidays["type"] == CLOSED_TYPE], days, stores)
    if closed_sundays:
        closed |= np.asarray(days.dayofweek == SUNDAY)[None, :]
    return closed


def gap_mask(
    n_stores: int, n_train: int, *, gap_stores: int, gap_days: int, rng: np.random.Generator
) -> BoolArray:
    """Flag stores x train days inside a store's gap (no rows), in the middle of its history.

    Store 1 keeps its history whole (unless it is the only store), like the late openings.
    """
    out = np.zeros((n_stores, n_train), dtype=bool)
    candidates = np.arange(1, n_stores) if n_stores > 1 else np.arange(1)
    chosen = rng.choice(candidates, size=min(gap_stores, len(candidates)), replace=False)
    length = min(gap_days, max(n_train // 3, 1))
    low = int(0.2 * n_train)
    high = max(int(0.8 * n_train) - length, low)
    for store in chosen:
        start = int(rng.integers(low, high + 1))
        out[int(store), start : start + length] = True
    return out


def apply_shape(
    config: SyntheticConfig,
    days: pd.DatetimeIndex,
    *,
    is_train: npt.NDArray[np.bool_],
    stores: pd.DataFrame,
    holidays: pd.DataFrame,
) -> tuple[pd.DataFrame, FloatArray, npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Holidays with the shape's extra rows, their lift, closed and gap store-days (all days).

    Its own random stream (the 10th child seed), so the default data's draws never move.
    """
    rng = np.random.default_rng(np.random.SeedSequence(config.seed).spawn(10)[9])
    lift = np.zeros((len(stores), len(days)), dtype=np.float64)
    if config.regional_holidays:
        extra = regional_rows(
            range(days[0].year, days[-1].year + 1),
            cities=sorted(set(stores["city"])),
            states=sorted(set(stores["state"])),
            rng=rng,
        )
        lift = regional_lift(extra, days, stores)
        extra["date"] = date_strings(pd.DatetimeIndex(extra["date"]))
        merged = pd.concat([holidays, extra], ignore_index=True)
        order = np.argsort(pd.to_datetime(merged["date"]).to_numpy(), kind="stable")
        holidays = merged.iloc[order].reset_index(drop=True)
    closed = closed_store_days(days, stores, holidays, closed_sundays=config.closed_sundays)
    gap = np.zeros_like(closed)
    gap[:, is_train] = gap_mask(
        len(stores),
        int(is_train.sum()),
        gap_stores=config.gap_stores,
        gap_days=config.gap_days,
        rng=rng,
    )
    return holidays, lift, closed, gap


def sales_frames(
    config: SyntheticConfig,
    days: pd.DatetimeIndex,
    fams: list[str],
    *,
    is_train: npt.NDArray[np.bool_],
    arrays: dict[str, npt.NDArray[np.generic]],
    absent: npt.NDArray[np.bool_],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """train.csv and test.csv rows; an ``open`` column when the shape has closed Sundays.

    ``absent`` (stores x days) are store-days without a train row: a gap, or a closure when
    there is no open column to carry it.
    """
    horizon = config.horizon
    train_cols, test_cols = list(TRAIN_COLUMNS), list(TEST_COLUMNS)
    values = {TARGET: arrays[TARGET], PROMO: arrays[PROMO]}
    if config.closed_sundays:
        values[OPEN] = arrays[OPEN]
        train_cols.append(OPEN)
        test_cols.append(OPEN)
    train_values = {k: v[:, :, is_train] for k, v in values.items()}
    keep = None
    if absent.any():
        keep = np.broadcast_to(~absent[:, None, is_train], train_values[PROMO].shape)
    train = long_frame(train_values, days[is_train], fams, first_id=0, keep=keep)
    test_values = {k: v[:, :, -horizon:] for k, v in values.items() if k != TARGET}
    test = long_frame(test_values, days[-horizon:], fams, first_id=len(train))
    return train[train_cols], test[test_cols]
