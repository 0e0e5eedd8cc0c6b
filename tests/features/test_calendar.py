import numpy as np
import pandas as pd

from retail_forecast.features.calendar import (
    calendar_columns,
    days_after,
    extra_calendar_columns,
    national_holiday_dates,
)


def test_transferred_holiday_counts_on_its_transfer_day_only() -> None:
    table = pd.DataFrame(
        {
            "date": ["2017-08-10", "2017-08-11", "2017-01-07", "2017-04-14", "2017-05-14"],
            "type": ["Holiday", "Transfer", "Work Day", "Holiday", "Event"],
            "locale": ["National", "National", "National", "Local", "National"],
            "locale_name": ["Ecuador", "Ecuador", "Ecuador", "Quito", "Ecuador"],
            "description": ["Grito", "Traslado Grito", "Recupero", "Fundacion", "Madre"],
            "transferred": [True, False, False, False, False],
        }
    )
    assert national_holiday_dates(table) == ["2017-08-11"]
    assert national_holiday_dates(None) == []


def test_calendar_columns() -> None:
    dates = pd.DatetimeIndex(["2017-08-14", "2017-08-15", "2016-12-25"])  # Mon, Tue, Sun
    cols = calendar_columns(dates)
    np.testing.assert_array_equal(cols["day_of_week"], [0, 1, 6])
    np.testing.assert_array_equal(cols["month"], [8, 8, 12])
    extra = extra_calendar_columns(
        dates, holiday_dates=["2017-08-15"], names=["day_of_month", "is_national_holiday"]
    )
    np.testing.assert_array_equal(extra["day_of_month"], [14, 15, 25])
    np.testing.assert_array_equal(extra["is_national_holiday"], [0, 1, 0])


def test_days_after_counts_whole_days_in_any_date_form() -> None:
    origin = pd.Timestamp("2016-12-31")
    days = pd.date_range("2016-12-20", "2017-03-05", freq="D")
    expected = np.asarray((days - origin).days)
    for form in (days, pd.Series(days), days.to_numpy()):
        np.testing.assert_array_equal(days_after(form, origin), expected)
