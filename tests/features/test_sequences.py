"""Sequence arrays for the LSTM: panel scatter, window shapes, no look-ahead, sampling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retail_forecast.errors import DataValidationError
from retail_forecast.features.sequences import (
    ENC,
    ENCODER_FEATURES,
    FUT,
    FUTURE_FEATURES,
    build_panel,
    calendar_array,
    encoder_array,
    future_array,
    sample_windows,
    window_index,
)
from retail_forecast.schema import DATE, FAMILY, IS_CLOSED, PROMO, STORE, TARGET

FAMILIES = ["AUTOMOTIVE", "BEVERAGES"]
STORES = [3, 7]


def _frame(n_days: int = 30) -> pd.DataFrame:
    """Store 7 sells AUTOMOTIVE only from day 10 on; everything else sells every day."""
    dates = pd.date_range("2016-12-10", periods=n_days, freq="D")
    rows = []
    for store in STORES:
        for k, family in enumerate(FAMILIES):
            sales = np.arange(n_days, dtype=float) + 1 + 100 * k + store
            if (store, family) == (7, "AUTOMOTIVE"):
                sales[:10] = 0.0
            rows.append(
                pd.DataFrame(
                    {
                        DATE: dates,
                        STORE: store,
                        FAMILY: family,
                        TARGET: sales,
                        PROMO: np.arange(n_days) % 3,
                        IS_CLOSED: False,
                    }
                )
            )
    return pd.concat(rows, ignore_index=True)


def test_build_panel_scatters_rows_to_series_and_days() -> None:
    frame = _frame().sample(frac=1.0, random_state=0)  # order must not matter
    frame[IS_CLOSED] = frame[DATE] == "2016-12-25"  # the chain closed (the frame says so)
    panel = build_panel(frame, stores=STORES, families=FAMILIES)
    assert panel.log_sales.shape == (4, 30)
    assert panel.calendar.shape == (30, 4)
    assert list(panel.store_pos) == [0, 0, 1, 1]
    assert list(panel.family_pos) == [0, 1, 0, 1]
    # store 3 / BEVERAGES on day 5: 5 + 1 + 100 + 3
    assert panel.log_sales[1, 5] == pytest.approx(np.log1p(109.0))
    assert panel.promo[1, 5] == 2
    christmas = (panel.dates == "2016-12-25").nonzero()[0][0]
    assert panel.closed[:, christmas].all()
    assert panel.closed.sum() == 4


def test_build_panel_marks_missing_days_and_rejects_unknown_series() -> None:
    frame = _frame()
    frame = frame[~((frame[STORE] == 3) & (frame[DATE] == "2016-12-20"))]
    panel = build_panel(frame, stores=STORES, families=FAMILIES)
    assert np.isnan(panel.log_sales[:2, 10]).all()
    assert np.isfinite(panel.log_sales[2:, 10]).all()
    with pytest.raises(DataValidationError, match="family"):
        build_panel(frame, stores=STORES, families=["AUTOMOTIVE"])


def test_window_index_arithmetic() -> None:
    idx = window_index(np.array([5, 9]), start=-2, length=3)
    assert idx.tolist() == [[3, 4, 5], [7, 8, 9]]


def test_encoder_shapes_channels_and_padding() -> None:
    panel = build_panel(_frame(), stores=STORES, families=FAMILIES)
    z = panel.log_sales - 1.0
    rows, origins = np.array([0, 2, 3]), np.array([20, 15, 4])
    x = encoder_array(z, panel, rows=rows, origins=origins, window=8)
    assert x.shape == (3, 8, len(ENCODER_FEATURES))
    assert x.dtype == np.float32
    assert x[0, -1, ENC["sales_scaled"]] == pytest.approx(z[0, 20], rel=1e-6)
    assert x[0, 0, ENC["sales_scaled"]] == pytest.approx(z[0, 13], rel=1e-6)
    assert (x[1, :, ENC["store_index"]] == 1).all()
    assert (x[1, :, ENC["family_index"]] == 0).all()
    # store 7 / AUTOMOTIVE first sells on day 10: days 8..9 are "before the first sale", zeroed.
    assert x[1, :, ENC["before_first_sale"]].tolist() == [1, 1, 0, 0, 0, 0, 0, 0]
    assert (x[1, :2, ENC["sales_scaled"]] == 0).all()
    # origin 4 with window 8: three padded days before the panel starts.
    assert x[2, :3, ENC["before_first_sale"]].tolist() == [1, 1, 1]
    assert (x[2, :3, ENC["sales_scaled"]] == 0).all()
    assert x[2, 3, ENC["before_first_sale"]] == 0
    assert x[0, -1, ENC["day_of_week"]] == panel.dates[20].dayofweek
    assert x[0, -1, ENC["month"]] == 12
    assert x[0, -1, ENC["day_of_month"]] == panel.dates[20].day


def test_encoder_never_reads_after_its_origin() -> None:
    panel = build_panel(_frame(), stores=STORES, families=FAMILIES)
    z = panel.log_sales.copy()
    rows, origins = np.array([0, 1, 3]), np.array([12, 20, 25])
    base = encoder_array(z, panel, rows=rows, origins=origins, window=10)
    later = z.copy()
    for r, o in zip(rows, origins, strict=True):
        later[r, o + 1 :] += 100.0
    assert np.array_equal(encoder_array(later, panel, rows=rows, origins=origins, window=10), base)
    at_origin = z.copy()
    at_origin[rows, origins] += 100.0
    assert not np.array_equal(
        encoder_array(at_origin, panel, rows=rows, origins=origins, window=10), base
    )


def test_future_array_channels() -> None:
    dates = pd.date_range("2017-12-20", periods=16, freq="D")
    promo = np.zeros((2, 16))
    promo[1, 3] = 4
    closed = np.asarray((dates.month == 12) & (dates.day == 25))[None]
    x = future_array(promo, calendar=calendar_array(dates)[None], closed=closed)
    assert x.shape == (2, 16, len(FUTURE_FEATURES))
    assert x[1, 3, FUT["onpromotion_log1p"]] == pytest.approx(np.log1p(4))
    assert x[:, 5, FUT["is_closed"]].tolist() == [1, 1]
    assert x[:, :, FUT["is_closed"]].sum() == 2
    assert x[0, -1, FUT["year_offset"]] == 3  # 2018 - 2015
    assert x[0, -1, FUT["day_of_month"]] == 4


def test_sample_windows_only_draws_eligible_cells_deterministically() -> None:
    eligible = np.zeros((3, 50), dtype=bool)
    eligible[0, 10:20] = True
    eligible[2, 40:45] = True
    weights = np.ones(50)
    rows, origins = sample_windows(
        eligible=eligible, n=500, day_weights=weights, rng=np.random.default_rng(0)
    )
    assert eligible[rows, origins].all()
    assert set(rows.tolist()) == {0, 2}
    again = sample_windows(
        eligible=eligible, n=500, day_weights=weights, rng=np.random.default_rng(0)
    )
    assert np.array_equal(again[0], rows)
    assert np.array_equal(again[1], origins)
    recent = np.where(np.arange(50) >= 40, 1.0, 0.0)
    rows, origins = sample_windows(
        eligible=eligible, n=100, day_weights=recent, rng=np.random.default_rng(0)
    )
    assert (rows == 2).all()
    with pytest.raises(DataValidationError):
        sample_windows(
            eligible=np.zeros((2, 5), dtype=bool),
            n=3,
            day_weights=np.ones(5),
            rng=np.random.default_rng(0),
        )
