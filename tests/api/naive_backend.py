"""A small but real Predictor for the API tests: seasonal naive (season 7) with a promo uplift.

It keeps an in-memory canonical history, forecasts recursively (day d = day d-7, from history
or from its own earlier forecasts), applies the zero rule to series dead for 21 days, checks
the API's guarantees (complete prefixes) and appends actuals idempotently. Its chain closes
on 25 December (:data:`CLOSURES`, its domain's).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import numpy as np
import pandas as pd

from retail_forecast.closed_days import YearlyClosures
from retail_forecast.errors import ConflictError, DataValidationError
from retail_forecast.inference.predictor import ServingDomain

FAMILIES = ("AUTOMOTIVE", "BEVERAGES", "GROCERY I", "LIQUOR,WINE,BEER")
STORES = (1, 2, 3)
SEASON = 7
DEAD_DAYS = 21
PROMO_UPLIFT = 0.05
DEAD_SERIES = (3, "AUTOMOTIVE")
CLOSURES = YearlyClosures(((12, 25),))


def make_history(
    end: dt.date = dt.date(2017, 8, 15), days: int = 70, seed: int = 0
) -> pd.DataFrame:
    """A complete canonical panel: weekly pattern x per-series level, one dead series."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range(end=pd.Timestamp(end), periods=days, freq="D")
    frames = []
    for store in STORES:
        for family in FAMILIES:
            level = rng.uniform(5, 200)
            weekly = 1 + 0.3 * np.sin(2 * np.pi * dates.dayofweek.to_numpy() / 7)
            sales = np.round(rng.poisson(level * weekly).astype("float64"), 0)
            promo = rng.integers(0, 5, size=days)
            if (store, family) == DEAD_SERIES:
                sales[-DEAD_DAYS - 5 :] = 0.0
            closed = (dates.month == 12) & (dates.day == 25)
            sales[closed] = 0.0
            promo[closed] = 0
            frames.append(
                pd.DataFrame(
                    {
                        "date": dates,
                        "store_nbr": store,
                        "family": family,
                        "sales": sales,
                        "onpromotion": promo.astype("int64"),
                        "is_closed": closed,
                    }
                )
            )
    out = pd.concat(frames, ignore_index=True)
    out["family"] = pd.Categorical(out["family"], categories=sorted(FAMILIES))
    return out.sort_values(["store_nbr", "family", "date"], ignore_index=True)


def _burn_cpu(seconds: float) -> None:
    deadline = time.perf_counter() + seconds
    total = 0
    while time.perf_counter() < deadline:
        total += sum(range(1000))


class SeasonalNaivePredictor:
    """Seasonal naive over a canonical history; thread-safe; optional test hooks."""

    def __init__(
        self,
        history: pd.DataFrame,
        *,
        version: str = "naive-test-1",
        onpromotion_cap: int = 50,
        reference: pd.DataFrame | None = None,
        metrics: dict[str, Any] | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._sales: dict[tuple[int, str], dict[dt.date, float]] = {}
        self._promo: dict[tuple[int, str], dict[dt.date, int]] = {}
        for row in history.itertuples(index=False):
            key = (int(row.store_nbr), str(row.family))
            day = pd.Timestamp(row.date).date()
            self._sales.setdefault(key, {})[day] = float(row.sales)
            self._promo.setdefault(key, {})[day] = int(row.onpromotion)
        self._history_end = pd.Timestamp(history["date"].max()).date()
        self._version = version
        self._cap = onpromotion_cap
        self.reference = reference  # the bundle's reference.parquet profile (monitoring)
        self.metrics = metrics  # the bundle's metrics.json (monitoring)
        self.block = threading.Event()  # set() by default: predict never waits
        self.block.set()
        self.block_stores: frozenset[int] = frozenset()
        self.crash_stores: frozenset[int] = frozenset()
        self.busy_stores: frozenset[int] = frozenset()
        self.busy_s = 0.0  # CPU burnt (pure Python, holds the GIL) for busy_stores
        self.calls = 0

    @property
    def model_version(self) -> str:
        return self._version

    @property
    def domain(self) -> ServingDomain:
        return ServingDomain(
            stores=tuple(sorted({k[0] for k in self._sales})),
            families=tuple(sorted({k[1] for k in self._sales})),
            history_end=self._history_end,
            horizon=16,
            onpromotion_cap=self._cap,
            closures=CLOSURES,
        )

    def predict(self, rows: pd.DataFrame) -> pd.DataFrame:
        self.calls += 1
        stores = set(rows["store_nbr"].tolist())
        if stores & self.block_stores:
            self.block.wait(30)
        if stores & self.busy_stores:
            _burn_cpu(self.busy_s)
        if stores & self.crash_stores:
            raise ZeroDivisionError("injected crash with a secret path /srv/secret")
        with self._lock:
            end, history = self._history_end, self._sales
            out = rows.copy()
            sales, models = [], []
            own: dict[tuple[int, str, dt.date], float] = {}
            order = rows.sort_values("date", kind="stable").index
            by_index: dict[Any, tuple[float, str]] = {}
            for i in order:
                key = (int(rows.at[i, "store_nbr"]), str(rows.at[i, "family"]))
                day = pd.Timestamp(rows.at[i, "date"]).date()
                shut = "is_closed" in rows.columns and bool(rows.at[i, "is_closed"])
                if CLOSURES.is_closed(day) and shut:  # the API answers it 0 itself
                    value, model = 0.0, "hybrid"
                else:  # an open day, or the yearly closure a row opened ("open": 1)
                    value, model = self._one(
                        key, day, int(rows.at[i, "onpromotion"]), end, history, own
                    )
                own[(*key, day)] = value
                by_index[i] = (value, model)
            for i in rows.index:
                sales.append(by_index[i][0])
                models.append(by_index[i][1])
        out["sales"] = np.asarray(sales, dtype="float64")
        out["model"] = models
        return out

    @staticmethod
    def _one(
        key: tuple[int, str],
        day: dt.date,
        promo: int,
        end: dt.date,
        history: dict[tuple[int, str], dict[dt.date, float]],
        own: dict[tuple[int, str, dt.date], float],
    ) -> tuple[float, str]:
        series = history[key]
        recent = [series.get(end - dt.timedelta(days=k), 0.0) for k in range(DEAD_DAYS)]
        if max(recent) == 0.0:
            return 0.0, "zero_rule"
        source = day - dt.timedelta(days=SEASON)
        if source <= end:
            base = series.get(source, 0.0)
        elif CLOSURES.is_closed(source):
            base = 0.0
        elif (*key, source) in own:
            base = own[(*key, source)]
        else:
            raise DataValidationError(f"row for {key} on {source} is missing from the request")
        return max(base * (1 + PROMO_UPLIFT * promo), 0.0), "hybrid"

    def append_actuals(self, rows: pd.DataFrame) -> int:
        new = 0
        with self._lock:
            for row in rows.itertuples(index=False):
                key = (int(row.store_nbr), str(row.family))
                day = pd.Timestamp(row.date).date()
                known = self._sales[key].get(day)
                if known is not None:
                    if known != float(row.sales) or self._promo[key].get(day) != row.onpromotion:
                        raise ConflictError(
                            f"store_nbr={key[0]} family={key[1]} date={day}: a different value "
                            "is already recorded"
                        )
                    continue
                self._sales[key][day] = float(row.sales)
                self._promo[key][day] = int(row.onpromotion)
                new += 1
            self._advance_end()
        return new

    def _advance_end(self) -> None:
        while True:
            nxt = self._history_end + dt.timedelta(days=1)
            if CLOSURES.is_closed(nxt):
                for key in self._sales:
                    self._sales[key].setdefault(nxt, 0.0)
                    self._promo[key].setdefault(nxt, 0)
            if not all(nxt in series for series in self._sales.values()):
                return
            self._history_end = nxt

    def describe(self) -> dict[str, Any]:
        return {
            "version": self._version,
            "kind": "seasonal_naive",
            "season": SEASON,
            "metrics": {"rmsle": None},
        }

    # --- MonitoringSource -------------------------------------------------------------------

    def history_frame(self) -> pd.DataFrame:
        """The complete days up to the history end as a canonical sales frame."""
        with self._lock:
            end = self._history_end
            rows = [
                (day, key[0], key[1], value, self._promo[key][day])
                for key, series in self._sales.items()
                for day, value in series.items()
                if day <= end
            ]
        frame = pd.DataFrame(rows, columns=["date", "store_nbr", "family", "sales", "onpromotion"])
        frame["date"] = pd.to_datetime(frame["date"])
        frame["store_nbr"] = frame["store_nbr"].astype("int64")
        families = sorted({key[1] for key in self._sales})
        frame["family"] = pd.Categorical(frame["family"], categories=families)
        frame["onpromotion"] = frame["onpromotion"].astype("int64")
        frame["is_closed"] = (frame["date"].dt.month == 12) & (frame["date"].dt.day == 25)
        return frame.sort_values(["store_nbr", "family", "date"], ignore_index=True)

    def reference_profile(self) -> pd.DataFrame | None:
        return self.reference

    def backtest_metrics(self) -> dict[str, Any] | None:
        return self.metrics

    def expected(self, store: int, family: str, day: dt.date, promo: int) -> float:
        """Day-1..7 expectation straight from the stored history (for assertions)."""
        base = self._sales[(store, family)][day - dt.timedelta(days=SEASON)]
        return base * (1 + PROMO_UPLIFT * promo)
