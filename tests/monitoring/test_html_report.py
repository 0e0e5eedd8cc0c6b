from __future__ import annotations

from pathlib import Path

import pandas as pd

from retail_forecast.config import MonitoringConfig
from retail_forecast.monitoring.drift import check_drift
from retail_forecast.monitoring.html_report import svg_bars, write_report
from retail_forecast.monitoring.reference import window_features


def test_report_holds_drift_accuracy_and_worst_series(
    sales: pd.DataFrame, reference: pd.DataFrame, tmp_path: Path
) -> None:
    current = window_features(sales, start="2017-04-01", end="2017-04-28")
    current["onpromotion"] = current["onpromotion"] + 7
    drift = check_drift(reference, current, config=MonitoringConfig())
    dates = pd.date_range("2017-08-01", periods=5)
    accuracy = pd.DataFrame(
        {
            "date": list(dates) * 2,
            "family": ["<BREAD & CO>"] * 5 + ["BEVERAGES"] * 5,
            "rmsle": [0.5, 0.6, 0.4, 0.7, 0.5, 0.2, 0.3, 0.2, 0.25, 0.3],
            "n": 10,
        }
    )
    worst = pd.DataFrame(
        {
            "store_nbr": 7,
            "family": "<BREAD & CO>",
            "date": dates,
            "prediction": [1.0, 2, 3, 4, 5],
            "actual": [2.0, 2, 2, 2, 2],
        }
    )
    path = write_report(tmp_path / "r.html", drift=drift, accuracy=accuracy, worst_series=worst)
    page = path.read_text()
    assert "onpromotion" in page
    assert "promo_share" in page
    assert ">drift<" in page
    assert "&lt;BREAD &amp; CO&gt;" in page
    assert "<BREAD & CO>" not in page
    assert page.count("<svg") == 3
    assert "store 7" in page
    per_family = page.index("&lt;BREAD &amp; CO&gt;</td>")
    assert per_family < page.index("BEVERAGES</td>")  # worst family first


def test_report_without_data_says_so(tmp_path: Path) -> None:
    page = write_report(
        tmp_path / "r.html", drift=None, accuracy=None, worst_series=None
    ).read_text()
    assert "not computed" in page
    assert page.count("no scored predictions yet") == 2


def test_bars_mark_drifted_features_red() -> None:
    svg = svg_bars(["a", "b"], [0.5, 3.0], flagged=[False, True])
    assert svg.count("#d62728") == 1
    assert svg.count("<rect") == 2
