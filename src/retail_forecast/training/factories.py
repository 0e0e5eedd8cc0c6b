"""Fresh, unfitted forecasters from the settings: what the backtest and the final fit train.

The ``train`` command's settings reach the models only through here (pipeline -> training ->
models): XGBoost's config and its early-stopping round count, the LSTM's config, the horizon
(``forecast.horizon``: XGBoost's recursion, the LSTM's head) and the thread split when the two
models are fitted side by side (``backtest.parallel_models``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from functools import partial

import pandas as pd

from retail_forecast.config import FeatureConfig, Settings, XGBoostConfig
from retail_forecast.models.lstm import LSTMForecaster
from retail_forecast.models.xgboost import XGBForecaster


class XGBoostFactory:
    """Fresh XGBForecasters for the backtest and the final fit, in the order they are fitted.

    With ``xgboost.early_stop_once`` (and no fixed ``rounds``), the first model made early-stops
    on its validation days, and every later one trains that many rounds on all of its rows.
    The backtest fits the oldest fold first, whose validation days precede every test window,
    so no fold's round count has seen its own test days; the final fit reuses the count too.
    """

    def __init__(
        self,
        config: XGBoostConfig,
        features: FeatureConfig,
        holidays: pd.DataFrame | None,
        *,
        horizon: int,
    ) -> None:
        self.config, self.features, self.holidays = config, features, holidays
        self.horizon = horizon
        self.first: XGBForecaster | None = None

    def __call__(self) -> XGBForecaster:
        config = self.config
        if self.first is not None and config.early_stop_once and config.rounds is None:
            if not hasattr(self.first, "booster_"):
                raise RuntimeError("the first XGBoost model must be fitted before the next")
            rounds = self.first.booster_.num_boosted_rounds()
            config = config.model_copy(update={"rounds": rounds})
        model = XGBForecaster(config, self.features, horizon=self.horizon, holidays=self.holidays)
        if self.first is None:
            self.first = model
        return model


@dataclass(frozen=True)
class ModelFactories:
    """Fresh, unfitted forecasters for the backtest and the final fit."""

    xgboost: XGBoostFactory
    lstm: Callable[[], LSTMForecaster]

    def as_dict(self) -> dict[str, Callable[[], XGBForecaster | LSTMForecaster]]:
        return {"xgboost": self.xgboost, "lstm": self.lstm}


def model_factories(
    settings: Settings, holidays: pd.DataFrame | None, *, side_by_side: bool = False
) -> ModelFactories:
    """Return the two models' factories.

    ``side_by_side``: the two models will be fitted at the same time, so XGBoost leaves the
    LSTM its threads (``xgboost.nthread - lstm.num_threads``, at least 1).
    """
    xgb_config = settings.xgboost
    if side_by_side:
        threads = max(1, xgb_config.nthread - settings.lstm.num_threads)
        xgb_config = xgb_config.model_copy(update={"nthread": threads})
    horizon = settings.forecast.horizon
    return ModelFactories(
        XGBoostFactory(xgb_config, settings.features, holidays, horizon=horizon),
        partial(LSTMForecaster, settings.lstm, horizon=horizon),
    )


def side_by_side_models(settings: Settings, names: Collection[str]) -> tuple[str, ...]:
    """Return the models to fit side by side (``backtest.parallel_models``), or ``()``."""
    pair = tuple(name for name in ("xgboost", "lstm") if name in names)
    return pair if settings.backtest.parallel_models and len(pair) == 2 else ()
