"""A yearly closure reads 0 in the history columns; any other closure carries the day before."""

from __future__ import annotations

import numpy as np
import pandas as pd

from retail_forecast.closed_days import NO_YEARLY_CLOSURES, YearlyClosures
from retail_forecast.features.builder import FeatureBuilder, FeatureSpec, panel_from_frame
from retail_forecast.schema import DATE, FAMILY, IS_CLOSED, PROMO, STORE, TARGET

CHRISTMAS = YearlyClosures(((12, 25),))


def _frame() -> pd.DataFrame:
    dates = pd.date_range("2014-11-01", "2016-01-31", freq="D")  # 25 December twice
    shut = (dates.month == 12) & (dates.day == 25)
    rows = []
    for store in (1, 2):
        sales = np.where(shut, 0.0, 10.0 * store + np.arange(len(dates)) % 7)
        rows.append(
            pd.DataFrame(
                {
                    DATE: dates,
                    STORE: store,
                    FAMILY: "GROCERY I",
                    TARGET: sales,
                    PROMO: 0,
                    IS_CLOSED: shut,
                }
            )
        )
    frame = pd.concat(rows, ignore_index=True)
    frame[FAMILY] = pd.Categorical(frame[FAMILY])
    return frame


def _lag_1(builder: FeatureBuilder, frame: pd.DataFrame) -> tuple[np.ndarray, pd.DatetimeIndex]:
    panel = panel_from_frame(frame)
    x = builder.panel_features(panel)
    return x[:, builder.feature_names.index("lag_1")].reshape(panel.n_series, -1), panel.dates


def test_the_builder_learns_the_yearly_closure_and_reads_it_as_0() -> None:
    frame = _frame()
    spec = FeatureSpec.named("required")
    learned = FeatureBuilder.from_frame(frame, spec)
    assert learned.yearly_closures == CHRISTMAS
    lag_1, dates = _lag_1(learned, frame)
    after = np.flatnonzero((dates.month == 12) & (dates.day == 26))
    assert (lag_1[:, after] == 0).all()
    # without it, 26 December reads the 24th's demand, as after any other closure
    plain = FeatureBuilder.from_frame(frame, spec, yearly_closures=NO_YEARLY_CLOSURES)
    carried, _ = _lag_1(plain, frame)
    sales = frame[TARGET].to_numpy().reshape(2, -1)
    np.testing.assert_allclose(carried[:, after], np.log1p(sales[:, after - 2]), rtol=1e-6)
    assert (carried[:, after] > 0).all()


def test_the_builder_saves_its_closures_and_an_old_one_reads_25_december() -> None:
    builder = FeatureBuilder.from_frame(_frame(), FeatureSpec.named("required"))
    data = builder.to_dict()
    assert data["yearly_closures"] == ["12-25"]
    assert FeatureBuilder.from_dict(data).yearly_closures == CHRISTMAS
    data["yearly_closures"] = []
    assert FeatureBuilder.from_dict(data).yearly_closures == NO_YEARLY_CLOSURES
    del data["yearly_closures"]  # a builder saved before the closures were learned
    assert FeatureBuilder.from_dict(data).yearly_closures == CHRISTMAS
