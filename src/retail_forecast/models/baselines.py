"""Baseline forecasters: zero, last value, mean of the last N days, seasonal naive."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt
import pandas as pd

from retail_forecast.closed_days import closed_rows
from retail_forecast.errors import ArtifactError, DataValidationError, UnknownSeriesError
from retail_forecast.features.builder import panel_from_frame
from retail_forecast.schema import DATE, FAMILY, STORE, TARGET
from retail_forecast.utils.io import read_json, write_json_atomic

FloatArray = npt.NDArray[np.float64]


class BaselineForecaster:
    """Forecast each series from its own recent sales; no training beyond remembering nothing.

    ``kind`` is one of ``zero``, ``last_value``, ``mean`` (of the last ``window`` days) and
    ``seasonal_naive`` (the value one ``season`` earlier, repeated). Closed days forecast 0;
    a day the data set closed itself counts as the last open day's sales, not as a 0.
    """

    KINDS: ClassVar[tuple[str, ...]] = ("zero", "last_value", "mean", "seasonal_naive")

    def __init__(self, kind: str, *, window: int = 14, season: int = 7) -> None:
        self.kind = kind
        self.window = window
        self.season = season

    def fit(self, history: pd.DataFrame) -> Self:
        if self.kind not in self.KINDS:
            raise DataValidationError(f"unknown baseline {self.kind!r}; use {self.KINDS}")
        return self

    def predict(self, history: pd.DataFrame, future: pd.DataFrame) -> pd.DataFrame:
        origin = pd.Timestamp(history[DATE].max())
        span = max(self.window, self.season, 1)
        recent = history[history[DATE] > origin - pd.Timedelta(days=span)]
        panel = panel_from_frame(recent)
        if len(panel.dates) < span:
            raise DataValidationError(f"baseline {self.kind} needs the last {span} days")
        key = pd.MultiIndex.from_frame(panel.keys.astype({FAMILY: str}))
        idx = key.get_indexer(
            pd.MultiIndex.from_frame(future[[STORE, FAMILY]].astype({FAMILY: str}))
        )
        if (idx < 0).any():
            raise UnknownSeriesError("future holds a series without history")
        steps = (pd.DatetimeIndex(future[DATE]) - origin).days.to_numpy()
        # panel.log_sales carries the last open day over the data set's own closures: a seasonal
        # naive of the day after a closed week day is that week day's last demand, not a 0
        values = self._values(np.expm1(panel.log_sales), idx, steps)
        values[closed_rows(future)] = 0.0
        out = future.copy()
        out[TARGET] = np.clip(values, 0.0, None)
        return out

    def _values(self, table: FloatArray, idx: npt.NDArray[np.intp], steps: Any) -> FloatArray:
        if self.kind == "zero":
            return np.zeros(len(idx))
        if self.kind == "last_value":
            return np.array(table[idx, -1], dtype=np.float64)
        if self.kind == "mean":
            return np.asarray(table[:, -self.window :].mean(axis=1)[idx], dtype=np.float64)
        back = self.season - ((np.asarray(steps) - 1) % self.season)
        return np.asarray(table[idx, -back], dtype=np.float64)

    def save(self, directory: Path) -> list[Path]:
        path = Path(directory) / f"baseline_{self.kind}.json"
        write_json_atomic(path, {"kind": self.kind, "window": self.window, "season": self.season})
        return [path]

    @classmethod
    def load(cls, directory: Path) -> Self:
        paths = sorted(Path(directory).glob("baseline_*.json"))
        if len(paths) != 1:
            raise ArtifactError(f"expected one baseline_*.json in {directory}, got {len(paths)}")
        meta = read_json(paths[0])
        return cls(str(meta["kind"]), window=int(meta["window"]), season=int(meta["season"]))


def baseline_factories() -> dict[str, Callable[[], BaselineForecaster]]:
    """Return factories of the four baselines of the backtest protocol, keyed by report name."""
    return {
        "zero": partial(BaselineForecaster, "zero"),
        "last_value": partial(BaselineForecaster, "last_value"),
        "mean_14": partial(BaselineForecaster, "mean", window=14),
        "seasonal_naive": partial(BaselineForecaster, "seasonal_naive", season=7),
    }
