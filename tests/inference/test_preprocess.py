"""Request rows and history slices: canonical dtypes, the same frame from both paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from bundle_helpers import TinyBundle

from retail_forecast.errors import DataValidationError, UnknownSeriesError
from retail_forecast.features.builder import panel_from_frame
from retail_forecast.inference.preprocess import (
    canonical_rows,
    panel_from_snapshot,
    requested_series,
    select_history,
)
from retail_forecast.schema import DATE, FAMILY, PROMO, STORE
from retail_forecast.storage.history import HistoryStore

FAMILIES = ["BEVERAGES", "AUTOMOTIVE"]


def test_canonical_rows_converts_plain_columns() -> None:
    raw = pd.DataFrame(
        {
            DATE: ["2017-08-17", "2017-08-16"],
            STORE: [2, 1],
            FAMILY: ["BEVERAGES", "AUTOMOTIVE"],
            PROMO: [3, 0],
            "id": [11, 10],
        },
        index=[5, 6],
    )
    out = canonical_rows(raw, FAMILIES)
    assert out.index.tolist() == [0, 1]
    assert out[DATE].dtype == "datetime64[ns]"
    assert list(out[FAMILY].cat.categories) == ["AUTOMOTIVE", "BEVERAGES"]
    assert out["id"].tolist() == [11, 10]
    assert requested_series(out) == [(1, "AUTOMOTIVE"), (2, "BEVERAGES")]
    again = canonical_rows(out, FAMILIES)  # already canonical: the fast path, same values
    pd.testing.assert_frame_equal(again, out)


def test_canonical_rows_refuses_bad_rows() -> None:
    raw = pd.DataFrame({DATE: ["2017-08-16"], STORE: [1], FAMILY: ["BREAD"], PROMO: [0]})
    with pytest.raises(UnknownSeriesError, match="BREAD"):
        canonical_rows(raw, FAMILIES)
    with pytest.raises(DataValidationError, match="non-negative"):
        canonical_rows(raw.assign(**{FAMILY: "AUTOMOTIVE", PROMO: -1}), FAMILIES)
    with pytest.raises(DataValidationError, match="lack the columns"):
        canonical_rows(raw.drop(columns=PROMO), FAMILIES)


def test_snapshot_and_frame_paths_give_the_same_history(
    tiny_bundle: TinyBundle, tmp_path: Path
) -> None:
    sales = tiny_bundle.sales
    families = sorted(sales[FAMILY].astype(str).unique())
    series = [(1, families[2]), (3, families[0])]
    with HistoryStore.from_frame(sales, n_days=60, db_path=tmp_path / "h.sqlite") as store:
        from_store = panel_from_snapshot(store.snapshot(), series)
    from_frame = select_history(sales, series, n_days=60, families=families)
    pd.testing.assert_frame_equal(from_store.to_frame(), from_frame)
    reshaped = panel_from_frame(from_frame)
    pd.testing.assert_frame_equal(from_store.keys, reshaped.keys)
    pd.testing.assert_index_equal(from_store.dates, reshaped.dates)
    for name in ("log_sales", "promo", "closed", "sales"):
        np.testing.assert_array_equal(getattr(from_store, name), getattr(reshaped, name))
    assert len(from_frame) == 2 * 60
    assert from_frame[DATE].max() == sales[DATE].max()
    with pytest.raises(UnknownSeriesError):
        select_history(sales, [(99, families[0])], n_days=60, families=families)
