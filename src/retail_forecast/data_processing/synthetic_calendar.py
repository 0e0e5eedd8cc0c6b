"""Holidays file and calendar, store and shock effects (log-multipliers) of the synthetic data."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from retail_forecast.data_processing.synthetic_tables import QUAKE_FAMILIES

FloatArray = npt.NDArray[np.float64]
HolidayRow = tuple[dt.date, str, str, str, str, bool]

# Log-effect of one national day on sales, by holidays_events "type" (before the per-family
# sensitivity, which can flip the sign: some families sell less on holidays).
NATIONAL_EFFECT = {"Holiday": 0.15, "Transfer": 0.15, "Additional": 0.3, "Bridge": 0.1}
EVENT_EFFECT = 0.1
WORK_DAY_EFFECT = -0.05
LOCAL_EFFECT = 0.12
# Fixed-date national holidays that move to the Friday when they fall on Tue..Thu.
TRANSFERABLE = {
    (5, 24): "Batalla de Pichincha",
    (8, 10): "Primer Grito de Independencia",
    (10, 9): "Independencia de Guayaquil",
}
FIXED = {
    (5, 1): "Dia del Trabajo",
    (11, 2): "Dia de Difuntos",
    (11, 3): "Independencia de Cuenca",
}
TUESDAY, THURSDAY = 1, 3
QUAKE_DAYS = 28
# Days off (each family reacts its own way, some sell less) vs shopping days (all sell more).
DAY_OFF_TYPES = frozenset({"Holiday", "Transfer", "Work Day"})
SHOPPING_TYPES = frozenset({"Additional", "Bridge", "Event"})


def easter(year: int) -> dt.date:
    """Gregorian Easter Sunday (anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    el = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * el) // 451
    month, day = divmod(h + el - 7 * m + 114, 31)
    return dt.date(year, month, day + 1)


def _national(kind: str, day: dt.date, description: str, *, moved: bool = False) -> HolidayRow:
    return (day, kind, "National", "Ecuador", description, moved)


def _bridge_rows(day: dt.date, name: str) -> list[HolidayRow]:
    """Bridge a Tuesday holiday with Monday, a Thursday one with Friday; work a Saturday back."""
    if day.weekday() == TUESDAY:
        bridge = day - dt.timedelta(days=1)
    elif day.weekday() == THURSDAY:
        bridge = day + dt.timedelta(days=1)
    else:
        return []
    work = bridge + dt.timedelta(days=(5 - bridge.weekday()) % 7 + 7)
    return [
        _national("Bridge", bridge, f"Puente {name}"),
        _national("Work Day", work, f"Recupero puente {name}"),
    ]


def _christmas_rows(year: int) -> list[HolidayRow]:
    christmas = dt.date(year, 12, 25)
    rows = [
        _national("Additional", christmas - dt.timedelta(days=k), f"Navidad-{k}")
        for k in (4, 3, 2, 1)
    ]
    rows.append(_national("Holiday", christmas, "Navidad"))
    rows.append(_national("Additional", christmas + dt.timedelta(days=1), "Navidad+1"))
    rows.append(_national("Additional", dt.date(year, 12, 31), "Primer dia del ano-1"))
    return rows + _bridge_rows(christmas, "Navidad")


def national_rows(year: int) -> list[HolidayRow]:
    """Ecuador's national holidays, events, transfers, bridges and work days of one year."""
    new_year = dt.date(year, 1, 1)
    sunday = easter(year)
    rows = [_national("Holiday", new_year, "Primer dia del ano"), *_bridge_rows(new_year, "ano")]
    rows += [
        _national("Holiday", sunday - dt.timedelta(days=48), "Carnaval"),
        _national("Holiday", sunday - dt.timedelta(days=47), "Carnaval"),
        _national("Holiday", sunday - dt.timedelta(days=2), "Viernes Santo"),
    ]
    mothers_day = dt.date(year, 5, 1) + dt.timedelta(days=(6 - dt.date(year, 5, 1).weekday()) % 7)
    mothers_day += dt.timedelta(days=7)
    rows += [
        _national("Additional", mothers_day - dt.timedelta(days=1), "Dia de la Madre-1"),
        _national("Event", mothers_day, "Dia de la Madre"),
    ]
    rows += [_national("Holiday", dt.date(year, m, d), name) for (m, d), name in FIXED.items()]
    for (month, mday), name in TRANSFERABLE.items():
        day = dt.date(year, month, mday)
        moved = day.weekday() in (1, 2, 3)
        rows.append(_national("Holiday", day, name, moved=moved))
        if moved:
            friday = day + dt.timedelta(days=4 - day.weekday())
            rows.append(_national("Transfer", friday, f"Traslado {name}"))
    if year >= 2014:
        nov1 = dt.date(year, 11, 1)
        thanksgiving = nov1 + dt.timedelta(days=(3 - nov1.weekday()) % 7 + 21)
        rows.append(_national("Event", thanksgiving + dt.timedelta(days=1), "Black Friday"))
        rows.append(_national("Event", thanksgiving + dt.timedelta(days=4), "Cyber Monday"))
    return rows + _christmas_rows(year)


def holidays_frame(
    *,
    years: Sequence[int],
    cities: Sequence[str],
    states: Sequence[str],
    quake: tuple[dt.date, str] | None,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Build holidays_events.csv: national rows, one founding day per city, one per state."""
    rows: list[HolidayRow] = []
    city_days = rng.integers(1, 366, size=len(cities))
    state_days = rng.integers(1, 366, size=len(states))
    for year in years:
        rows += national_rows(year)
        origin = dt.date(year, 1, 1)
        for city, doy in zip(cities, city_days, strict=True):
            day = origin + dt.timedelta(days=int(doy) - 1)
            rows.append((day, "Holiday", "Local", city, f"Fundacion de {city}", False))
        for state, doy in zip(states, state_days, strict=True):
            day = origin + dt.timedelta(days=int(doy) - 1)
            rows.append((day, "Holiday", "Regional", state, f"Provincializacion de {state}", False))
    if quake is not None:
        day, state = quake
        rows.append(_national("Event", day, f"Terremoto {state}"))
        rows += [
            _national("Event", day + dt.timedelta(days=k), f"Terremoto {state}+{k}")
            for k in range(1, 31)
        ]
    frame = pd.DataFrame(
        rows, columns=["date", "type", "locale", "locale_name", "description", "transferred"]
    )
    frame["date"] = pd.to_datetime(frame["date"])
    frame = frame.sort_values("date", kind="stable").reset_index(drop=True)
    frame["date"] = frame["date"].dt.strftime("%Y-%m-%d").astype(object)
    return frame


def national_effect(
    holidays: pd.DataFrame, days: pd.DatetimeIndex, *, types: frozenset[str]
) -> npt.NDArray[np.float64]:
    """Log-effect per calendar day of the national rows of some types (transferred ones skipped)."""
    national = holidays[(holidays["locale"] == "National") & holidays["type"].isin(types)]
    national = national[~national["transferred"].astype(bool)]
    national = national[~national["description"].str.startswith("Terremoto")]
    effect = national["type"].map(NATIONAL_EFFECT).astype(float)
    effect[national["type"] == "Event"] = EVENT_EFFECT
    effect[national["type"] == "Work Day"] = WORK_DAY_EFFECT
    per_day = effect.groupby(pd.to_datetime(national["date"])).max()
    return np.asarray(per_day.reindex(days, fill_value=0.0), dtype=np.float64)


def local_effect(
    holidays: pd.DataFrame, days: pd.DatetimeIndex, stores: pd.DataFrame
) -> npt.NDArray[np.float64]:
    """Log-effect (stores x days) of local (city) and regional (state) holidays."""
    out = np.zeros((len(stores), len(days)), dtype=np.float64)
    day_pos = pd.Series(np.arange(len(days)), index=days)
    for column, locale in (("city", "Local"), ("state", "Regional")):
        rows = holidays[holidays["locale"] == locale]
        for name, dates in rows.groupby("locale_name")["date"]:
            pos = day_pos.reindex(pd.to_datetime(dates)).dropna().to_numpy(dtype=np.int64)
            hit = (stores[column] == name).to_numpy()
            out[np.ix_(hit, pos)] += LOCAL_EFFECT
    return out


def seasonal_effect(
    days: pd.DatetimeIndex, fams: list[str], rng: np.random.Generator
) -> FloatArray:
    """Family x day log-effects: weekly, yearly, December, paydays, school season."""
    n_fam = len(fams)
    week = np.log([0.97, 0.89, 0.93, 0.79, 0.91, 1.21, 1.29])
    week -= week.mean()
    weekly = rng.uniform(0.5, 1.5, size=(n_fam, 1)) * week[np.asarray(days.dayofweek)]
    angle = 2 * np.pi * np.asarray(days.dayofyear, dtype=np.float64) / 365.25
    yearly = 0.08 * np.cos(angle - 2 * np.pi * 355 / 365.25) + rng.normal(
        0, 0.06, size=(n_fam, 1)
    ) * np.sin(angle + rng.uniform(0, 2 * np.pi, size=(n_fam, 1)))
    day, month = np.asarray(days.day), np.asarray(days.month)
    december = np.where((month == 12) & (day < 25), 0.3 * (day - 1) / 23, 0.0)
    is_payday = (day == 15) | np.asarray(days.is_month_end)
    payday = 0.1 * is_payday + 0.05 * np.roll(is_payday, 1)
    school_day = (days - pd.to_datetime(days.year.astype(str) + "-08-01")).days.to_numpy()
    school = np.where((school_day >= 0) & (school_day < 46), np.sin(np.pi * school_day / 46), 0)
    is_school = np.array([name == "SCHOOL AND OFFICE SUPPLIES" for name in fams])[:, None]
    effect = weekly + yearly + december + payday + 1.2 * school * is_school
    return np.asarray(effect, dtype=np.float64)


def store_day_effect(
    days: pd.DatetimeIndex,
    stores: pd.DataFrame,
    holidays: pd.DataFrame,
    *,
    opening: npt.NDArray[np.int64],
    horizon: int,
    rng: np.random.Generator,
) -> FloatArray:
    """Store x day log-effects: local/regional holidays, growth trend, opening ramp, shocks.

    The trend is anchored at the last train day (``horizon`` days before the last day).
    """
    n_stores, n_days = len(stores), len(days)
    t = np.arange(n_days, dtype=np.float64)
    slope = rng.normal(0.03, 0.05, size=(n_stores, 1))
    trend = slope * (t - (n_days - horizon - 1)) / 365.25
    since_open = np.clip(t[None, :] - opening[:, None], 0.0, None)
    ramp = np.log1p(-0.6 * np.exp(-since_open / 15.0))
    ramp[:, 0] = 0.0
    ramp = np.where(opening[:, None] > 0, ramp, 0.0)
    shock = rng.normal(0.0, 0.05, size=(n_stores, n_days))
    return local_effect(holidays, days, stores) + trend + ramp + shock


def family_day_effect(
    days: pd.DatetimeIndex, fams: list[str], holidays: pd.DataFrame, rng: np.random.Generator
) -> FloatArray:
    """Family x day log-effects: seasonality and national holidays (lift or lower by family)."""
    day_off = national_effect(holidays, days, types=DAY_OFF_TYPES)[None, :]
    shopping = national_effect(holidays, days, types=SHOPPING_TYPES)[None, :]
    day_off_sensitivity = rng.normal(0.8, 0.6, size=(len(fams), 1))
    shopping_sensitivity = rng.uniform(0.6, 1.4, size=(len(fams), 1))
    day_shock = rng.normal(0.0, 0.03, size=(1, len(days)))
    return (
        seasonal_effect(days, fams, rng)
        + day_off_sensitivity * day_off
        + shopping_sensitivity * shopping
        + day_shock
    )


def quake_effect(
    days: pd.DatetimeIndex,
    fams: list[str],
    stores: pd.DataFrame,
    quake: tuple[dt.date, str] | None,
) -> FloatArray:
    """Lift some families for a few weeks after the shock: strong in one region, mild elsewhere."""
    if quake is None:
        return np.zeros((len(stores), len(fams), len(days)), dtype=np.float64)
    since = (days - pd.Timestamp(quake[0])).days.to_numpy().astype(np.float64)
    is_on = (since >= 0) & (since < QUAKE_DAYS)
    decay = np.where(is_on, np.exp(-np.clip(since, 0, None) / 7.0), 0.0)
    region = np.where(stores["state"].to_numpy() == quake[1], 0.6, 0.1)
    hit = np.array([name in QUAKE_FAMILIES for name in fams], dtype=np.float64)
    return region[:, None, None] * hit[None, :, None] * decay[None, None, :]
