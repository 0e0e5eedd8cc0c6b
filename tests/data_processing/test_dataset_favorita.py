"""The real Favorita files meet the contract (one build_dataset call for the module)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from retail_forecast.config import DataConfig
from retail_forecast.data_processing.dataset import BuiltDataset, build_dataset

pytestmark = pytest.mark.data

N_SERIES = 1_782
N_DAYS = 1_688  # 2013-01-01 .. 2017-08-15: 1,684 dates in the file + 4 Dec-25 days filled


@pytest.fixture(scope="module")
def built(favorita_dir: Path) -> BuiltDataset:
    return build_dataset(favorita_dir, DataConfig(max_quarantine_share=0.0))


def test_rows_all_kept_none_quarantined(built: BuiltDataset) -> None:
    report = built.report
    assert report.is_usable
    assert (report.rows_read, report.rows_kept, report.rows_quarantined) == (
        3_000_888,
        3_000_888,
        0,
    )
    assert len(built.quarantine) == 0
    assert report.issues == {}


def test_domain_sizes_and_dates(built: BuiltDataset) -> None:
    report = built.report
    assert (report.series, report.stores, report.families) == (N_SERIES, 54, 33)
    assert (report.first_date, report.last_date) == ("2013-01-01", "2017-08-15")
    assert len(report.families_domain) == 33
    assert sorted(built.sales["store_nbr"].unique()) == list(range(1, 55))


def test_completed_panel_fills_the_four_christmases(built: BuiltDataset) -> None:
    sales = built.sales
    assert len(sales) == N_SERIES * N_DAYS
    closed = sales[sales["is_closed"]]
    assert len(closed) == N_SERIES * 4
    assert sorted(closed["date"].dt.year.unique()) == [2013, 2014, 2015, 2016]
    assert (closed["date"].dt.strftime("%m-%d") == "12-25").all()
    assert closed["sales"].sum() == 0
    assert report_fill(built) == (N_SERIES * 4, 0)


def report_fill(built: BuiltDataset) -> tuple[int, int]:
    return built.report.filled_closed_rows, built.report.filled_open_rows


def test_sales_match_the_published_summary(built: BuiltDataset) -> None:
    observed = built.sales.loc[~built.sales["is_closed"]]
    assert observed["sales"].mean() == pytest.approx(357.7757, abs=1e-4)
    assert observed["sales"].max() == 124_717.0
    assert observed["onpromotion"].max() == 741
    assert (observed["sales"] == 0).mean() == pytest.approx(0.313, abs=5e-4)


def test_test_frame(built: BuiltDataset) -> None:
    test = built.test
    assert test is not None
    assert len(test) == 28_512
    assert test["id"].min() == 3_000_888
    assert test["id"].max() == 3_029_399
    assert test["date"].min() == pd.Timestamp("2017-08-16")
    assert test["date"].max() == pd.Timestamp("2017-08-31")
    assert list(test["family"].cat.categories) == list(built.sales["family"].cat.categories)


def test_side_tables(built: BuiltDataset) -> None:
    assert built.stores is not None
    assert len(built.stores) == 54
    assert built.oil is not None
    assert len(built.oil) == 1_218
    assert int(built.oil["dcoilwtico"].isna().sum()) == 43
    assert built.holidays is not None
    assert len(built.holidays) == 350
    assert built.transactions is not None
    assert len(built.transactions) == 83_488
