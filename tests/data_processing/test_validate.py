"""Validation rules (promises 20 and 21): every rule, its line, one pass, counts that add up."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retail_forecast.config import DataConfig
from retail_forecast.data_processing.dataset import build_dataset
from retail_forecast.data_processing.validate import FAMILY_MIN_DATE_SHARE, family_domain
from retail_forecast.errors import DataValidationError, MissingInputError

LOOSE = DataConfig(max_quarantine_share=1.0, fail_on_key_rules=False)
N_TRAIN = 96


def row(i: int, date: str, store: str, family: str, sales: str, promo: str) -> str:
    family = f'"{family}"' if "," in family else family
    return f"{i},{date},{store},{family},{sales},{promo}"


# Row 10 of the tiny panel is (2016-12-21, store 2, BREAD/BAKERY): the 12th line of the file.
R10 = ("10", "2016-12-21", "2", "BREAD/BAKERY", "5.0", "1")


def with_r10(**changes: str) -> str:
    fields = dict(zip(("i", "date", "store", "family", "sales", "promo"), R10, strict=True))
    fields |= changes
    return row(
        int(fields["i"]), *(fields[k] for k in ("date", "store", "family", "sales", "promo"))
    )


SINGLE_RULE_CASES = {
    "bad_date_day": (with_r10(date="2016-12-32"), "bad_date"),
    "bad_date_format": (with_r10(date="21/12/2016"), "bad_date"),
    "bad_date_feb29": (with_r10(date="2017-02-29"), "bad_date"),
    "bad_store_float": (with_r10(store="2.0"), "bad_store_nbr"),
    "bad_store_hex": (with_r10(store="0x2"), "bad_store_nbr"),  # arrow's cast would take it
    "bad_family_empty": (with_r10(family=""), "bad_family"),
    "bad_sales_text": (with_r10(sales="abc"), "bad_sales"),
    "bad_sales_empty": (with_r10(sales=""), "bad_sales"),
    "non_finite_sales_inf": (with_r10(sales="inf"), "non_finite_sales"),
    "non_finite_sales_nan": (with_r10(sales="NaN"), "non_finite_sales"),
    "negative_sales": (with_r10(sales="-1.5"), "negative_sales"),
    "bad_onpromotion": (with_r10(promo="2.5"), "bad_onpromotion"),
    "negative_onpromotion": (with_r10(promo="-1"), "negative_onpromotion"),
    "unknown_store": (with_r10(store="99"), "unknown_store"),
    "unknown_family": (with_r10(family="BREAD/BAKERY "), "unknown_family"),
    "malformed_extra_field": (with_r10() + ",9", "malformed_row"),
    "malformed_missing_field": (with_r10().rsplit(",", 1)[0], "malformed_row"),
    "encoding": (with_r10().encode().replace(b"5.0", b"5\xff0"), "encoding"),
}


@pytest.mark.parametrize("case", sorted(SINGLE_RULE_CASES))
def test_p20_each_rule_is_reported_with_its_line(tiny_kaggle, case: str) -> None:
    line, rule = SINGLE_RULE_CASES[case]
    tiny_kaggle.train[10] = line
    built = build_dataset(tiny_kaggle.write(), LOOSE, strict=False)
    q = built.quarantine
    assert len(q) == 1, q
    got = q.iloc[0]
    assert got["source_file"] == "train.csv"
    assert got["source_line"] == 12
    assert got["rule"].split(";")[0] == rule
    assert built.report.issues.get(rule) == 1
    report = built.report
    assert (report.rows_read, report.rows_kept, report.rows_quarantined) == (N_TRAIN, 95, 1)


def test_p20_duplicate_key_keeps_first_and_quarantines_the_copy(tiny_kaggle) -> None:
    tiny_kaggle.train.append(with_r10(i="500", sales="7.0"))
    built = build_dataset(tiny_kaggle.write(), LOOSE, strict=False)
    assert built.quarantine[["source_line", "rule"]].values.tolist() == [
        [N_TRAIN + 2, "duplicate_key"]
    ]
    kept = built.sales[(built.sales["store_nbr"] == 2) & (built.sales["date"] == "2016-12-21")]
    assert kept.loc[kept["family"] == "BREAD/BAKERY", "sales"].tolist() == [5.0]


def test_p20_train_row_in_the_future_of_test(tiny_kaggle) -> None:
    tiny_kaggle.train.append(row(500, "2017-01-06", "1", "AUTOMOTIVE", "1.0", "0"))
    built = build_dataset(tiny_kaggle.write(), LOOSE, strict=False)
    assert built.quarantine["rule"].tolist() == ["future_date"]
    assert built.report.last_date == "2017-01-05"


def test_p20_test_file_rules(tiny_kaggle) -> None:
    # test row i: day i // 6 after 2017-01-05, store (1, 2)[i % 6 // 3], family i % 3
    tiny_kaggle.test[0] = "1000,2017-01-30,1,AUTOMOTIVE,0"  # 25 days after the last train day
    tiny_kaggle.test[1] = "1001,2017-01-06,7,BREAD/BAKERY,0"  # store not in stores.csv
    tiny_kaggle.test[2] = "1002,2017-01-06,1,liquor,0"  # family not in the domain
    tiny_kaggle.test[3] = "x,2017-01-06,2,AUTOMOTIVE,0"  # id not an int
    tiny_kaggle.test.append("2000,2017-01-06,2,AUTOMOTIVE,1")  # test[3] is out: not a copy
    tiny_kaggle.test.append("2001,2017-01-07,1,AUTOMOTIVE,0")  # a copy of test[6]
    built = build_dataset(tiny_kaggle.write(), LOOSE, strict=False)
    q = built.quarantine.set_index("source_line")
    assert set(q["source_file"]) == {"test.csv"}
    assert q["rule"].to_dict() == {
        2: "outside_horizon",
        3: "unknown_store",
        4: "unknown_family",
        5: "bad_id",
        99: "duplicate_key",
    }
    assert built.test is not None
    assert len(built.test) == 96 - 4 + 1
    assert built.report.files["test"].rows_read == 98
    assert list(built.test.columns) == ["id", "date", "store_nbr", "family", "onpromotion"]


def test_p21_dirty_file_every_row_quarantined_once_and_counts_add_up(tiny_kaggle) -> None:
    lines = tiny_kaggle.train
    expected = {
        3: "bad_date",
        4: "bad_store_nbr",
        5: "negative_sales",
        6: "bad_sales",
        7: "non_finite_sales",
        8: "negative_onpromotion",
        9: "unknown_store",
        10: "unknown_family",
        11: "malformed_row",
        12: "malformed_row",
        13: "encoding",
    }
    lines[1] = row(1, "2016-12-2O", "1", "BREAD/BAKERY", "1.0", "0")
    lines[2] = row(2, "2016-12-20", "x1", "LIQUOR,WINE,BEER", "1.0", "0")
    lines[3] = row(3, "2016-12-20", "2", "AUTOMOTIVE", "-4.0", "0")
    lines[4] = row(4, "2016-12-20", "2", "BREAD/BAKERY", "1.5e", "0")
    lines[5] = row(5, "2016-12-20", "2", "LIQUOR,WINE,BEER", "-inf", "0")
    lines[6] = row(6, "2016-12-21", "1", "AUTOMOTIVE", "1.0", "-3")
    lines[7] = row(7, "2016-12-21", "54", "BREAD/BAKERY", "1.0", "0")
    lines[8] = row(8, "2016-12-21", "1", "LIQUOR WINE BEER", "1.0", "0")
    lines[9] = row(9, "2016-12-21", "2", "AUTOMOTIVE", "1.0", "0") + ",extra"
    lines[10] = "10,2016-12-21,2"
    lines[11] = b"11,2016-12-21,2,AUTOMOTIVE,1.0,\xfe0"
    lines.append(row(700, "2016-12-26", "1", "AUTOMOTIVE", "9.0", "0"))  # a copy of row 30
    lines.append(row(600, "2016-12-20", "-1", "", "-1", "x"))  # several problems, one row
    expected[N_TRAIN + 2] = "duplicate_key"
    built = build_dataset(tiny_kaggle.write(), DataConfig(), strict=False)
    q = built.quarantine[built.quarantine["source_file"] == "train.csv"]
    assert q["source_line"].is_unique
    got = dict(zip(q["source_line"], q["rule"], strict=True))
    multi = got.pop(N_TRAIN + 3)
    assert sorted(multi.split(";")) == [
        "bad_family",
        "bad_onpromotion",
        "negative_sales",
        "unknown_store",
    ]
    assert {k: v.split(";")[0] for k, v in got.items()} == expected
    report = built.report
    assert report.rows_read == N_TRAIN + 2
    assert report.rows_read == report.rows_kept + report.rows_quarantined
    assert report.rows_quarantined == len(expected) + 1
    assert len(q) == report.rows_quarantined
    for rule in set(expected.values()):
        assert report.issues[rule] >= 1
    assert not report.is_usable  # over the 0.1 % budget and a duplicate key
    assert any("budget" in e for e in report.errors)
    assert any("duplicate_key" in e for e in report.errors)


def test_p21_quarantine_raw_value_holds_the_row(tiny_kaggle) -> None:
    tiny_kaggle.train[11] = row(11, "2016-12-21", "2", "LIQUOR,WINE,BEER", "-2.0", "2")
    tiny_kaggle.train[12] = "12,2016-12-22,1,AUTOMOTIVE,1.0,0,9"
    q = build_dataset(tiny_kaggle.write(), LOOSE, strict=False).quarantine.set_index("source_line")
    assert q.loc[13, "raw_value"] == "11,2016-12-21,2,LIQUOR,WINE,BEER,-2.0,2"
    assert q.loc[14, "raw_value"] == "12,2016-12-22,1,AUTOMOTIVE,1.0,0,9"


def test_p21_over_budget_fails_strict_but_reports(tiny_kaggle) -> None:
    tiny_kaggle.train[10] = with_r10(sales="-2.0")
    data_dir = tiny_kaggle.write()
    with pytest.raises(DataValidationError, match="budget"):
        build_dataset(data_dir, DataConfig())
    assert build_dataset(data_dir, DataConfig(max_quarantine_share=0.02)).report.is_usable


def test_p21_key_rules_fail_even_within_budget(tiny_kaggle) -> None:
    tiny_kaggle.train.append(with_r10(i="500"))
    data_dir = tiny_kaggle.write()
    report = build_dataset(data_dir, DataConfig(max_quarantine_share=0.5), strict=False).report
    assert report.errors == ["train: key/referential rule failed (1 duplicate_key)"]
    lenient = DataConfig(max_quarantine_share=0.5, fail_on_key_rules=False)
    assert build_dataset(data_dir, lenient).report.is_usable


def test_clean_tiny_data_is_usable_with_zero_budget(tiny_kaggle) -> None:
    built = build_dataset(tiny_kaggle.write(), DataConfig(max_quarantine_share=0.0))
    assert built.report.is_usable
    assert len(built.quarantine) == 0
    assert built.report.families_domain == ["AUTOMOTIVE", "BREAD/BAKERY", "LIQUOR,WINE,BEER"]
    assert built.oil is not None
    assert np.isnan(built.oil["dcoilwtico"].iloc[0])
    assert built.holidays is not None
    assert not built.holidays["transferred"].iloc[0]


def test_missing_required_column_is_fatal(tiny_kaggle) -> None:
    tiny_kaggle.train_header = "id,date,store_nbr,family,onpromotion,sales_typo"
    with pytest.raises(MissingInputError, match="sales"):
        build_dataset(tiny_kaggle.write(), DataConfig(), strict=False)


def test_missing_required_file_is_fatal_optional_file_is_none(tiny_kaggle) -> None:
    tiny_kaggle.test = None
    data_dir = tiny_kaggle.write()
    built = build_dataset(data_dir, DataConfig())
    assert built.test is None
    Path(data_dir / "stores.csv").unlink()
    with pytest.raises(MissingInputError, match=r"stores\.csv"):
        build_dataset(data_dir, DataConfig())


def test_family_domain_is_families_on_half_the_dates() -> None:
    dates = pd.date_range("2017-01-01", periods=10).to_numpy(dtype="datetime64[ns]")
    dates = np.concatenate([dates, dates[:5], dates[:1]])
    families = pd.Categorical(["A"] * 10 + ["B"] * 5 + ["C"])
    assert FAMILY_MIN_DATE_SHARE == 0.5
    assert family_domain(dates, families) == ["A", "B"]
