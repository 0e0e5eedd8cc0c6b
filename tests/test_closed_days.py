"""Closed days: yearly closures learned from a history, one answer in array and one-date forms."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retail_forecast.closed_days import (
    NO_YEARLY_CLOSURES,
    YearlyClosures,
    closed_rows,
    frame_yearly_closures,
    infer_yearly_closures,
)
from retail_forecast.errors import ArtifactError

SRC = Path(__file__).resolve().parents[1] / "src" / "retail_forecast"
NEW_YEAR_AND_CHRISTMAS = YearlyClosures(((1, 1), (12, 25)))


def test_mask_flags_the_calendar_days_in_any_date_form() -> None:
    days = pd.date_range("2011-12-20", "2017-01-05", freq="D")
    expected = np.asarray(
        ((days.month == 12) & (days.day == 25)) | ((days.month == 1) & (days.day == 1))
    )
    assert expected.sum() == 12  # six of each
    for form in (days, pd.Series(days), days.to_numpy(), days.to_numpy().astype("datetime64[D]")):
        np.testing.assert_array_equal(NEW_YEAR_AND_CHRISTMAS.mask(form), expected)


def test_no_closures_close_nothing() -> None:
    days = pd.date_range("2016-01-01", "2016-12-31", freq="D")
    assert not NO_YEARLY_CLOSURES.mask(days).any()
    assert not any(NO_YEARLY_CLOSURES.is_closed(d.date()) for d in days)
    assert not NO_YEARLY_CLOSURES


def test_time_of_day_does_not_matter() -> None:
    stamps = pd.DatetimeIndex(["2016-12-24 23:59", "2016-12-25 00:00", "2016-12-25 18:30"])
    np.testing.assert_array_equal(NEW_YEAR_AND_CHRISTMAS.mask(stamps), [False, True, True])
    assert [NEW_YEAR_AND_CHRISTMAS.is_closed(t) for t in stamps] == [False, True, True]


def test_one_date_form_agrees_with_the_array_form_on_every_day_of_a_leap_year() -> None:
    leap_day = YearlyClosures(((2, 29), (12, 25)))
    days = pd.date_range("2016-01-01", "2016-12-31", freq="D")
    flags = leap_day.mask(days)
    assert [d.timetuple()[1:3] for d in days[flags]] == [(2, 29), (12, 25)]
    forms: dict[str, list[dt.date] | list[np.datetime64]] = {
        "date": [d.date() for d in days],
        "timestamp": list(days),
        "datetime64[D]": list(days.to_numpy().astype("datetime64[D]")),
        "datetime64[ns]": list(days.to_numpy()),
    }
    for kind, values in forms.items():
        assert [leap_day.is_closed(day) for day in values] == flags.tolist(), kind


def _chain_closed(days: pd.DatetimeIndex, shut: list[str]) -> np.ndarray:
    return np.isin(days.strftime("%Y-%m-%d"), shut)


def test_a_day_closed_chain_wide_every_year_is_learned() -> None:
    days = pd.date_range("2014-03-01", "2016-09-30", freq="D")  # 25 Dec twice, 1 Jan twice
    shut = ["2014-12-25", "2015-12-25", "2015-01-01", "2016-01-01", "2015-06-03"]
    found = infer_yearly_closures(_chain_closed(days, shut), days)
    assert found == NEW_YEAR_AND_CHRISTMAS  # 3 June was closed once: a one-off, not yearly


def test_a_day_open_in_one_year_or_seen_once_is_not_yearly() -> None:
    days = pd.date_range("2014-03-01", "2016-09-30", freq="D")
    # 25 December closed in 2014 but open in 2015; 4 July closed in all three years
    shut = ["2014-12-25", "2014-07-04", "2015-07-04", "2016-07-04"]
    assert infer_yearly_closures(_chain_closed(days, shut), days) == YearlyClosures(((7, 4),))
    one_year = pd.date_range("2015-06-01", "2016-05-31", freq="D")
    assert infer_yearly_closures(_chain_closed(one_year, ["2015-12-25"]), one_year) == (
        NO_YEARLY_CLOSURES
    )
    assert infer_yearly_closures(np.zeros(0, dtype=bool), one_year[:0]) == NO_YEARLY_CLOSURES


def test_a_frame_closed_in_one_store_only_learns_nothing() -> None:
    days = pd.date_range("2014-12-20", "2016-01-05", freq="D")
    christmas = np.asarray((days.month == 12) & (days.day == 25))
    rows = []
    for store, closed in ((1, christmas), (2, christmas & (days.year == 2014))):
        rows.append(pd.DataFrame({"date": days, "store_nbr": store, "is_closed": closed}))
    frame = pd.concat(rows, ignore_index=True)
    assert frame_yearly_closures(frame) == NO_YEARLY_CLOSURES
    frame.loc[frame["store_nbr"] == 2, "is_closed"] = christmas
    assert frame_yearly_closures(frame) == YearlyClosures(((12, 25),))


def test_closed_rows_read_the_frame_column_only() -> None:
    frame = pd.DataFrame({"date": pd.to_datetime(["2016-12-25", "2016-12-26"])})
    np.testing.assert_array_equal(closed_rows(frame), [False, False])
    frame["is_closed"] = [False, True]
    np.testing.assert_array_equal(closed_rows(frame), [False, True])


def test_json_round_trip_and_malformed_values_name_the_source() -> None:
    assert NEW_YEAR_AND_CHRISTMAS.to_json() == ["01-01", "12-25"]
    assert YearlyClosures.from_json(["12-25", "01-01"]) == NEW_YEAR_AND_CHRISTMAS
    for bad in ("12-25", ["12/25"], ["02-30"], ["13-01"]):
        with pytest.raises(ArtifactError, match="bundle-x"):
            YearlyClosures.from_json(bad, source="bundle-x")


def test_no_calendar_date_is_a_code_default() -> None:
    # A data set's closed days are learned from its history (or read from an old bundle);
    # the generator's chain and the legacy bundle reader are the two places that name one.
    copies = re.compile(r"==\s*12\b.*==\s*25\b|[\"']12-25[\"']|\(\s*12\s*,\s*25\s*\)")
    allowed = {"closed_days.py", "bundle_contents.py", "synthetic.py"}
    found = [
        f"{path.relative_to(SRC)}:{number}"
        for path in sorted(SRC.rglob("*.py"))
        if path.name not in allowed
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if copies.search(line)
    ]
    assert found == []
