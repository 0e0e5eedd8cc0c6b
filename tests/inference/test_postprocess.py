"""checked_output() / checked_frame(): refuse misaligned, non-finite or unlabeled output."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retail_forecast.errors import ForecastError
from retail_forecast.inference.postprocess import checked_frame, checked_output, submission


def rows() -> pd.DataFrame:
    return pd.DataFrame({"id": [7, 3, 5], "store_nbr": [1, 1, 2]}, index=[10, 11, 12])


def test_checked_output_keeps_order_and_clips_tiny_negatives() -> None:
    labels = ["hybrid", "xgboost", "zero_rule"]
    sales, models = checked_output([1.5, -1e-12, 0.0], labels, 3)
    assert sales.tolist() == [1.5, 0.0, 0.0]
    assert models.tolist() == labels


@pytest.mark.parametrize(
    ("sales", "models", "message"),
    [
        ([1.0, np.nan, 2.0], None, "non-finite"),
        ([1.0, np.inf, 2.0], None, "non-finite"),
        ([1.0, -0.5, 2.0], None, "negative"),
        ([1.0, 2.0], None, "expected 3 rows"),
        ([1.0, 2.0, 3.0], ["hybrid", "hybrid"], "expected 3 rows"),
        ([1.0, 2.0, 3.0], ["hybrid", "closed", "lstm"], "unknown model labels"),
    ],
)
def test_checked_output_refuses_bad_output(
    sales: list[float], models: list[str] | None, message: str
) -> None:
    with pytest.raises(ForecastError, match=message):
        checked_output(sales, models or ["hybrid"] * len(sales), 3)


def test_checked_frame_checks_a_predictors_answer_columns() -> None:
    answer = rows().assign(sales=[2.0, -1e-12, 0.5], model=["hybrid", "zero_rule", "lstm"])
    sales, models = checked_frame(answer, 3)
    assert sales.tolist() == [2.0, 0.0, 0.5]
    assert models.tolist() == ["hybrid", "zero_rule", "lstm"]
    assert answer["sales"].tolist()[1] == -1e-12  # the predictor's frame is not modified


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (rows().assign(sales=[1.0, 2.0, 3.0]), r"lacks the columns \['model'\]"),
        (rows().assign(model="hybrid"), r"lacks the columns \['sales'\]"),
        (rows().assign(sales=[1.0, np.nan, 3.0], model="hybrid"), "non-finite"),
        (rows().assign(sales=1.0, model=["hybrid", "closed", "lstm"]), "unknown model labels"),
        (rows().assign(sales=1.0, model="hybrid").iloc[:2], "expected 3 rows"),
    ],
)
def test_checked_frame_refuses_a_malformed_answer(answer: pd.DataFrame, message: str) -> None:
    with pytest.raises(ForecastError, match=message):
        checked_frame(answer, 3)


def test_submission_has_id_and_sales() -> None:
    forecast = rows().assign(sales=[1.0, 2.0, 3.0])
    out = submission(forecast)
    assert list(out.columns) == ["id", "sales"]
    assert out["id"].tolist() == [7, 3, 5]
    assert out["sales"].tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(ForecastError, match="no id"):
        submission(forecast.drop(columns="id"))
