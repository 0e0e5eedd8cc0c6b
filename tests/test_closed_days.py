"""The closed-day rule: one definition, the same answer in its array and one-date forms."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import pandas as pd

from retail_forecast.closed_days import CLOSED_MONTH_DAY, is_closed_date, is_closed_day

SRC = Path(__file__).resolve().parents[1] / "src" / "retail_forecast"


def test_is_closed_day_is_25_december_only_in_any_date_form() -> None:
    days = pd.date_range("2011-12-20", "2017-01-05", freq="D")
    expected = np.asarray((days.month == 12) & (days.day == 25))
    assert expected.sum() == 6  # 2011 .. 2016
    for form in (days, pd.Series(days), days.to_numpy(), days.to_numpy().astype("datetime64[D]")):
        np.testing.assert_array_equal(is_closed_day(form), expected)


def test_time_of_day_does_not_matter() -> None:
    stamps = pd.DatetimeIndex(["2016-12-24 23:59", "2016-12-25 00:00", "2016-12-25 18:30"])
    np.testing.assert_array_equal(is_closed_day(stamps), [False, True, True])
    assert [is_closed_date(t) for t in stamps] == [False, True, True]


def test_one_date_form_agrees_with_the_array_form_on_every_day_of_a_leap_year() -> None:
    days = pd.date_range("2016-01-01", "2016-12-31", freq="D")
    flags = is_closed_day(days)
    assert flags.sum() == 1
    assert days[flags][0].timetuple()[1:3] == CLOSED_MONTH_DAY
    forms: dict[str, list[dt.date] | list[np.datetime64]] = {
        "date": [d.date() for d in days],
        "timestamp": list(days),
        "datetime64[D]": list(days.to_numpy().astype("datetime64[D]")),
        "datetime64[ns]": list(days.to_numpy()),
    }
    for kind, values in forms.items():
        assert [is_closed_date(day) for day in values] == flags.tolist(), kind


def test_the_rule_is_written_once_in_the_source() -> None:
    # A second copy (month == 12 and day == 25, "12-25", (12, 25)) would let the stages
    # disagree once a data set brings its own closures; they all ask closed_days instead.
    copies = re.compile(r"==\s*12\b.*==\s*25\b|[\"']12-25[\"']|\(\s*12\s*,\s*25\s*\)")
    found = [
        f"{path.relative_to(SRC)}:{number}"
        for path in sorted(SRC.rglob("*.py"))
        if path.name != "closed_days.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if copies.search(line)
    ]
    assert found == []
