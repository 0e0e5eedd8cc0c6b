"""Panel completion (a day with no row anywhere closed, other gaps open) and the fingerprint."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from retail_forecast.closed_days import YearlyClosures
from retail_forecast.config import DataConfig
from retail_forecast.data_processing.clean import complete_panel, fingerprint, mark_future_closures
from retail_forecast.data_processing.dataset import build_dataset
from retail_forecast.features.builder import panel_from_frame
from retail_forecast.schema import CANONICAL_COLUMNS, SORT_KEYS


def test_dec25_is_filled_closed_and_the_panel_is_complete(tiny_kaggle) -> None:
    built = build_dataset(tiny_kaggle.write(), DataConfig())
    sales = built.sales
    assert list(sales.columns) == list(CANONICAL_COLUMNS)
    assert len(sales) == 6 * 17  # 6 series x 2016-12-20..2017-01-05
    christmas = sales[sales["date"] == "2016-12-25"]
    assert len(christmas) == 6
    assert christmas["is_closed"].all()
    assert (christmas["sales"] == 0).all()
    assert (christmas["onpromotion"] == 0).all()
    assert sales.loc[sales["date"] != "2016-12-25", "is_closed"].sum() == 0
    assert built.report.filled_closed_rows == 6
    assert built.report.filled_open_rows == 0


def test_any_day_without_a_row_in_any_series_is_closed_and_carries_the_day_before(
    tiny_kaggle,
) -> None:
    # no date is special: a day the whole chain has no row is closed, wherever it falls;
    # a day one series lacks stays "open, sales 0"
    tiny_kaggle.train = [
        line
        for line in tiny_kaggle.train
        if ",2016-12-28," not in str(line) and ",2016-12-30,1,AUTOMOTIVE," not in str(line)
    ]
    built = build_dataset(tiny_kaggle.write(), DataConfig())
    sales = built.sales
    shut = set(sales.loc[sales["is_closed"], "date"].dt.strftime("%Y-%m-%d"))
    assert shut == {"2016-12-25", "2016-12-28"}
    assert built.report.filled_closed_rows == 12
    assert built.report.filled_open_rows == 1
    assert built.report.closures["chain_closed_dates"] == ["2016-12-25", "2016-12-28"]
    assert built.report.closures["yearly"] == []  # each seen once: not learned as yearly
    panel = panel_from_frame(sales)
    day = {str(d.date()): k for k, d in enumerate(panel.dates)}
    for closed, before in (("2016-12-25", "2016-12-24"), ("2016-12-28", "2016-12-27")):
        np.testing.assert_array_equal(
            panel.log_sales[:, day[closed]], panel.log_sales[:, day[before]]
        )
    assert (panel.log_sales[:, day["2016-12-24"]] > 0).any()


def test_canonical_dtypes_order_and_index(tiny_kaggle) -> None:
    sales = build_dataset(tiny_kaggle.write(), DataConfig()).sales
    assert sales.dtypes.astype(str).to_dict() == {
        "date": "datetime64[ns]",
        "store_nbr": "int64",
        "family": "category",
        "sales": "float64",
        "onpromotion": "int64",
        "is_closed": "bool",
    }
    assert list(sales["family"].cat.categories) == sorted(sales["family"].cat.categories)
    assert isinstance(sales.index, pd.RangeIndex)
    assert sales.equals(sales.sort_values(list(SORT_KEYS)).reset_index(drop=True))
    first = sales.iloc[0]
    assert (first["store_nbr"], first["family"], str(first["date"].date())) == (
        1,
        "AUTOMOTIVE",
        "2016-12-20",
    )
    assert first["sales"] == 0.0
    assert first["onpromotion"] == 0
    row1 = sales[(sales["store_nbr"] == 1) & (sales["family"] == "BREAD/BAKERY")].iloc[0]
    assert (row1["sales"], row1["onpromotion"]) == (7.0, 1)  # train row 1


def test_other_missing_day_is_zero_and_open() -> None:
    rows = pd.DataFrame(
        {
            "date": pd.to_datetime(["2017-01-01", "2017-01-03", "2017-01-02", "2017-01-03"]),
            "store_nbr": np.array([1, 1, 2, 2], dtype=np.int64),
            "family": pd.Categorical(["A", "A", "A", "A"], categories=["A"]),
            "sales": [1.0, 3.0, 2.0, 4.0],
            "onpromotion": np.array([1, 0, 0, 5], dtype=np.int64),
        }
    )
    panel, stats = complete_panel(rows)
    assert len(panel) == 6
    assert panel["sales"].tolist() == [1.0, 0.0, 3.0, 0.0, 2.0, 4.0]
    assert panel["onpromotion"].tolist() == [1, 0, 0, 0, 0, 5]
    assert not panel["is_closed"].any()
    assert (stats.series, stats.days, stats.filled_open_rows) == (2, 3, 2)


def test_p24_fingerprint_ignores_row_order_and_file_split(tiny_kaggle) -> None:
    base = build_dataset(tiny_kaggle.write("csv"), DataConfig()).fingerprint
    rng = np.random.default_rng(0)
    shuffled = list(tiny_kaggle.train)
    rng.shuffle(shuffled)
    tiny_kaggle.train = shuffled
    assert build_dataset(tiny_kaggle.write("shuffled"), DataConfig()).fingerprint == base

    parts_dir = tiny_kaggle.write("parts")
    train = pd.read_csv(parts_dir / "train.csv", dtype={"date": str})
    shuffled = train.sample(frac=1, random_state=1)
    (parts_dir / "train.csv").unlink()
    (parts_dir / "train_parts").mkdir()
    for i, chunk in enumerate(shuffled.iloc[i::3] for i in range(3)):
        pq.write_table(
            pa.Table.from_pandas(chunk, preserve_index=False),
            parts_dir / "train_parts" / f"df_train_part_{i}.parquet",
        )
    assert build_dataset(parts_dir, DataConfig()).fingerprint == base


def test_p24_fingerprint_changes_with_one_value(tiny_kaggle) -> None:
    base = build_dataset(tiny_kaggle.write("a"), DataConfig()).fingerprint
    tiny_kaggle.train[40] = tiny_kaggle.train[40].rsplit(",", 2)[0] + ",1000.5,0"
    changed = build_dataset(tiny_kaggle.write("b"), DataConfig()).fingerprint
    assert changed != base


def test_p24_fingerprint_sensitive_to_each_column_and_dtype(tiny_kaggle) -> None:
    sales = build_dataset(tiny_kaggle.write(), DataConfig()).sales
    base = fingerprint(sales)
    assert fingerprint(sales.sample(frac=1, random_state=3)) == base
    edits = {
        "promo": sales.assign(onpromotion=sales["onpromotion"].where(sales.index != 5, 9)),
        "closed": sales.assign(is_closed=sales["is_closed"].where(sales.index != 6, True)),
        "date": sales.assign(
            date=sales["date"].where(sales.index != 0, pd.Timestamp("2000-01-01"))
        ),
        "dtype": sales.assign(sales=sales["sales"].astype(np.float32)),
        "tiny": sales.assign(sales=sales["sales"] + np.where(sales.index == 7, 1e-9, 0.0)),
    }
    for name, frame in edits.items():
        assert fingerprint(frame) != base, name


def test_a_test_row_saying_open_1_is_not_closed_by_a_yearly_closure() -> None:
    test = pd.DataFrame(
        {
            "date": pd.to_datetime(["2017-12-24", "2017-12-25", "2017-12-25", "2017-12-25"]),
            "store_nbr": [1, 1, 2, 3],
            "open": [1, 1, 0, 1],
        }
    )
    christmas = YearlyClosures(((12, 25),))
    marked = mark_future_closures(test, holidays=None, stores=None, yearly=christmas)
    assert marked["is_closed"].tolist() == [False, False, True, False]
    no_flag = mark_future_closures(
        test.drop(columns="open"), holidays=None, stores=None, yearly=christmas
    )
    assert no_flag["is_closed"].tolist() == [False, True, True, True]
