"""Helpers for the API tests: settings, in-process clients that run the lifespan, rows."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient
from naive_backend import FAMILIES, STORES, SeasonalNaivePredictor

from retail_forecast.app import create_app
from retail_forecast.config import ApiConfig, Settings
from retail_forecast.inference.predictor import PredictorLoader

HISTORY_END = dt.date(2017, 8, 15)


def make_settings(**api: Any) -> Settings:
    return Settings(_env_file=None, api=ApiConfig(**api))  # type: ignore[call-arg]


def wait_ready(client: TestClient, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get("/ready").status_code == 200:
            return
        time.sleep(0.01)
    raise AssertionError("service did not become ready")


@contextmanager
def serve(
    predictor: SeasonalNaivePredictor | None = None,
    *,
    ready: bool = True,
    loader: PredictorLoader | None = None,
    **api: Any,
) -> Iterator[TestClient]:
    """An in-process client; the lifespan (background load + warm-up) runs for real."""
    if loader is None:
        assert predictor is not None
        loader = lambda _settings: predictor  # noqa: E731
    app = create_app(make_settings(**api), load_predictor=loader)
    with TestClient(app, raise_server_exceptions=False) as client:
        if ready:
            wait_ready(client)
        yield client


def day(k: int, end: dt.date = HISTORY_END) -> str:
    """ISO date of horizon day k (1-based)."""
    return (end + dt.timedelta(days=k)).isoformat()


def series_rows(
    store: int = 1,
    family: str = "BEVERAGES",
    days: int = 16,
    promo: int = 0,
    *,
    end: dt.date = HISTORY_END,
    **extra: Any,
) -> list[dict[str, Any]]:
    return [
        {"date": day(k, end), "store_nbr": store, "family": family, "onpromotion": promo, **extra}
        for k in range(1, days + 1)
    ]


def all_rows(days: int = 16) -> list[dict[str, Any]]:
    return [r for s in STORES for f in FAMILIES for r in series_rows(s, f, days)]
