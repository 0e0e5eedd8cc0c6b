"""The dead-series rule judges open days only, in every model and the blend.

A store shut for weeks before the origin (a refurbishment) that opens again in the forecast
window is forecast, not zeroed; a series that was open and sold nothing is dead, closures or not.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from retail_forecast.config import XGBoostConfig
from retail_forecast.features.builder import panel_from_frame
from retail_forecast.features.sequences import build_panel, dead_series
from retail_forecast.models.hybrid import dead_series_mask
from retail_forecast.models.xgboost import XGBForecaster
from retail_forecast.schema import DATE, FAMILY, IS_CLOSED, PROMO, STORE, TARGET

DAYS = 21
# store 1: sold, then shut for the last 30 days; store 2: open, sold nothing for 30 days;
# store 3: open and selling; store 4: sold, shut 10 of the last 21 days, open and silent after
SHUT, SILENT, SELLING, REOPENED_SILENT = 1, 2, 3, 4


def _frame() -> pd.DataFrame:
    dates = pd.date_range("2017-05-01", periods=90, freq="D")
    tail = np.arange(90) >= 60
    rows = []
    for store in (SHUT, SILENT, SELLING, REOPENED_SILENT):
        sales = np.full(90, 5.0)
        closed = np.zeros(90, dtype=bool)
        if store == SHUT:
            closed = tail
        if store in (SHUT, SILENT):
            sales[tail] = 0.0
        if store == REOPENED_SILENT:
            closed = (np.arange(90) >= 69) & (np.arange(90) < 79)
            sales[69:] = 0.0
        rows.append(
            pd.DataFrame(
                {
                    DATE: dates,
                    STORE: store,
                    FAMILY: "GROCERY I",
                    TARGET: sales,
                    PROMO: 0,
                    IS_CLOSED: closed,
                }
            )
        )
    frame = pd.concat(rows, ignore_index=True)
    frame[FAMILY] = pd.Categorical(frame[FAMILY])
    return frame


def test_every_model_keeps_a_store_back_from_a_long_closure_and_zeros_a_silent_one() -> None:
    frame = _frame()
    stores = [SHUT, SILENT, SELLING, REOPENED_SILENT]
    future = pd.DataFrame(
        {
            DATE: pd.Timestamp("2017-07-30"),
            STORE: stores,
            FAMILY: pd.Categorical(["GROCERY I"] * 4),
            PROMO: 0,
        }
    )
    expected = [False, True, False, True]  # shut: forecast; silent: dead; reopened silent: dead
    panel = panel_from_frame(frame)
    assert dead_series_mask(panel, future, days=DAYS).tolist() == expected
    assert dead_series_mask(frame, future, days=DAYS).tolist() == expected
    xgb = XGBForecaster(XGBoostConfig(dead_series_days=DAYS), horizon=16)
    assert xgb.dead_series(panel, np.arange(4)).tolist() == expected
    lstm_panel = build_panel(frame, stores=stores, families=["GROCERY I"])
    assert dead_series(lstm_panel, DAYS).tolist() == expected
