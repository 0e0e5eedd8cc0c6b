"""Strict vectorised parsers: what is accepted and what is bad."""

from __future__ import annotations

import numpy as np
import pandas as pd

from retail_forecast.data_processing.parse import parse_bool, parse_date, parse_float, parse_int


def text(*values: str | None) -> pd.Series:
    return pd.Series(pd.Categorical(values))


def test_parse_int_is_strict() -> None:
    values, bad = parse_int(
        text("1", "-3", "+4", "1.0", "", " 1", "x", "99999999999999999999", None)
    )
    assert bad.tolist() == [False, False, False, True, True, True, True, True, True]
    assert values[:3].tolist() == [1, -3, 4]
    floats = pd.Series([1.0, 2.5, np.nan, 3.0])
    assert parse_int(floats)[1].tolist() == [False, True, True, False]


def test_parse_float_literals_and_empty() -> None:
    values, bad = parse_float(text("1.5", "1e3", "nan", "inf", "abc", "", "1,5"))
    assert bad.tolist() == [False, False, False, False, True, True, True]
    assert values[1] == 1000.0
    assert np.isnan(values[2])
    assert np.isinf(values[3])
    _, bad_empty_ok = parse_float(text("", "2"), allow_empty=True)
    assert bad_empty_ok.tolist() == [False, False]


def test_parse_date_iso_only() -> None:
    values, bad = parse_date(
        text("2016-02-29", "2017-02-29", "16/08/2017", "20170816", "2017-8-1", "", "2017-08-16")
    )
    assert bad.tolist() == [False, True, True, True, True, True, False]
    assert str(values[0])[:10] == "2016-02-29"
    assert values.dtype == np.dtype("datetime64[ns]")


def test_parse_bool() -> None:
    values, bad = parse_bool(text("True", "False", "yes"))
    assert values.tolist()[:2] == [True, False]
    assert bad.tolist() == [False, False, True]
