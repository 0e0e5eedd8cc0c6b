"""uvicorn factory for the server tests: the real app over the seasonal-naive test predictor.

The loader waits until the file named by RF_TEST_RELEASE_FILE exists, so a test can watch
/ready stay 503 while the model "loads"; RF_TEST_PREDICT_DELAY_S slows every prediction.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd
from fastapi import FastAPI
from naive_backend import SeasonalNaivePredictor, make_history

from retail_forecast.app import create_app
from retail_forecast.config import Settings


class DelayedPredictor(SeasonalNaivePredictor):
    delay_s = 0.0

    def predict(self, rows: pd.DataFrame) -> pd.DataFrame:
        time.sleep(self.delay_s)
        return super().predict(rows)


def load(_settings: Settings) -> SeasonalNaivePredictor:
    release = os.environ.get("RF_TEST_RELEASE_FILE")
    deadline = time.monotonic() + 60
    while release and not Path(release).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    predictor = DelayedPredictor(make_history())
    predictor.delay_s = float(os.environ.get("RF_TEST_PREDICT_DELAY_S", "0"))
    return predictor


def make_app() -> FastAPI:
    return create_app(Settings(), load_predictor=load)
