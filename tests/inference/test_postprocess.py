"""finalize(): refuses misaligned, non-finite or unlabeled model output; keeps row order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retail_forecast.errors import ForecastError
from retail_forecast.inference.postprocess import finalize, submission


def rows() -> pd.DataFrame:
    return pd.DataFrame({"id": [7, 3, 5], "store_nbr": [1, 1, 2]}, index=[10, 11, 12])


def output(sales: list[float], models: list[str] | None = None) -> pd.DataFrame:
    return pd.DataFrame({"sales": sales, "model": models or ["hybrid"] * len(sales)})


def test_finalize_keeps_order_and_clips_tiny_negatives() -> None:
    out = finalize(rows(), output([1.5, -1e-12, 0.0], ["hybrid", "xgboost", "zero_rule"]))
    assert out.index.tolist() == [10, 11, 12]
    assert out["sales"].tolist() == [1.5, 0.0, 0.0]
    assert out["model"].tolist() == ["hybrid", "xgboost", "zero_rule"]


@pytest.mark.parametrize(
    ("sales", "models", "message"),
    [
        ([1.0, np.nan, 2.0], None, "non-finite"),
        ([1.0, np.inf, 2.0], None, "non-finite"),
        ([1.0, -0.5, 2.0], None, "negative"),
        ([1.0, 2.0], None, "expected 3 rows"),
        ([1.0, 2.0, 3.0], ["hybrid", "closed", "lstm"], "unknown model labels"),
    ],
)
def test_finalize_refuses_bad_output(
    sales: list[float], models: list[str] | None, message: str
) -> None:
    with pytest.raises(ForecastError, match=message):
        finalize(rows(), output(sales, models))


def test_submission_has_id_and_sales() -> None:
    out = submission(finalize(rows(), output([1.0, 2.0, 3.0])))
    assert list(out.columns) == ["id", "sales"]
    assert out["id"].tolist() == [7, 3, 5]
    with pytest.raises(ForecastError, match="no id"):
        submission(finalize(rows().drop(columns="id"), output([1.0, 2.0, 3.0])))
