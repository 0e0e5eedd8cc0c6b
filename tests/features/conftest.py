"""Tiny canonical sales panels for feature, model and backtest tests."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest


def make_panel(
    *, n_stores: int = 3, n_families: int = 2, n_days: int = 120, seed: int = 0
) -> pd.DataFrame:
    """A complete canonical panel ending 2017-08-15 with weekly seasonality and promotions."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range(end="2017-08-15", periods=n_days, freq="D")
    families = [f"FAM {chr(65 + i)}" for i in range(n_families)]
    rows = []
    for store in range(1, n_stores + 1):
        for f, family in enumerate(families):
            promo = rng.poisson(2.0, n_days) * (rng.random(n_days) < 0.3)
            level = 5.0 + 20.0 * rng.random() * (store + f)
            weekly = 1.0 + 0.4 * np.sin(2 * np.pi * dates.dayofweek.to_numpy() / 7)
            sales = rng.poisson(level * weekly * (1 + 0.05 * promo)).astype(np.float64)
            rows.append(
                pd.DataFrame(
                    {
                        "date": dates,
                        "store_nbr": store,
                        "family": family,
                        "sales": sales,
                        "onpromotion": promo.astype(np.int64),
                    }
                )
            )
    frame = pd.concat(rows, ignore_index=True)
    closed = ((frame["date"].dt.month == 12) & (frame["date"].dt.day == 25)).to_numpy()
    frame.loc[closed, ["sales", "onpromotion"]] = 0
    frame["is_closed"] = closed
    frame["store_nbr"] = frame["store_nbr"].astype(np.int64)
    frame["family"] = pd.Categorical(frame["family"], categories=sorted(families))
    return frame


@pytest.fixture
def panel_factory() -> Callable[..., pd.DataFrame]:
    return make_panel
