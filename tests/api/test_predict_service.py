"""The predict service: closed days, one checked model call per group, the JSON template."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pandas as pd
import pytest
from api_helpers import series_rows, serve
from naive_backend import SeasonalNaivePredictor, make_history

from retail_forecast.api.predict_service import (
    PredictJob,
    answer_batch,
    answer_predict,
    render_predictions,
)
from retail_forecast.api.validation import RowBatch
from retail_forecast.errors import ForecastError

URL = "/api/v1/predict"


class Recording(SeasonalNaivePredictor):
    """Records the rows of every model call; ``nan_stores`` get a NaN forecast."""

    def __init__(self, *args: Any, nan_stores: frozenset[int] = frozenset(), **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.seen: list[pd.DataFrame] = []
        self.nan_stores = nan_stores

    def predict(self, rows: pd.DataFrame) -> pd.DataFrame:
        self.seen.append(rows)
        out = super().predict(rows)
        out.loc[out["store_nbr"].isin(self.nan_stores), "sales"] = float("nan")
        return out


def body(rows: list[dict[str, Any]]) -> bytes:
    return json.dumps({"rows": rows}).encode()


def test_a_yearly_closure_is_answered_closed_and_sent_to_the_model_as_closed() -> None:
    end = dt.date(2017, 12, 20)
    predictor = Recording(make_history(end=end))
    rows = series_rows(store=2, family="GROCERY I", days=7, end=end)
    answer = json.loads(answer_predict(body(rows), predictor=predictor, max_rows=100))
    by_date = {p["date"]: p for p in answer["predictions"]}
    assert by_date["2017-12-25"] == {
        "date": "2017-12-25",
        "store_nbr": 2,
        "family": "GROCERY I",
        "sales": 0.0,
        "model": "closed",
        "closed": True,
    }
    # the domain's yearly closure goes to the model flagged closed (the recursion must know)
    assert [len(seen) for seen in predictor.seen] == [7]
    sent = predictor.seen[0].set_index("date")["is_closed"]
    assert sent.to_dict() == {d: d == pd.Timestamp("2017-12-25") for d in sent.index}
    assert all(p["model"] == "hybrid" for d, p in by_date.items() if d != "2017-12-25")


def test_a_malformed_answer_is_refused_not_served() -> None:
    predictor = Recording(make_history(), nan_stores=frozenset({3}))
    with pytest.raises(ForecastError, match="non-finite"):
        answer_predict(body(series_rows(store=3, days=2)), predictor=predictor, max_rows=100)


def test_a_malformed_answer_fails_only_its_own_request_of_a_micro_batch() -> None:
    predictor = Recording(make_history(), nan_stores=frozenset({3}))
    jobs = [PredictJob(body(series_rows(store=s, days=2)), predictor, 100) for s in (1, 3, 2)]
    outcomes = answer_batch(jobs)
    assert [len(seen) for seen in predictor.seen] == [6, 2, 2, 2]  # shared, then one by one
    assert isinstance(outcomes[1], ForecastError)
    for outcome, store in ((outcomes[0], 1), (outcomes[2], 2)):
        assert not isinstance(outcome, Exception)
        content, served = outcome
        assert {p["store_nbr"] for p in json.loads(content)["predictions"]} == {store}
        assert list(served.stores) == [store, store]


@pytest.mark.parametrize("micro_batch", [0, 16])
def test_a_malformed_answer_is_a_500_without_the_values(micro_batch: int) -> None:
    predictor = Recording(make_history(), nan_stores=frozenset({3}))
    with serve(predictor, micro_batch_requests=micro_batch) as client:
        bad = client.post(URL, json={"rows": series_rows(store=3, days=2)})
        good = client.post(URL, json={"rows": series_rows(store=1, days=2)})
    assert bad.status_code == 500
    assert bad.json()["error"] == "internal"
    assert "nan" not in bad.text.lower()
    assert good.status_code == 200


def test_the_template_writes_what_json_dumps_writes() -> None:
    batch = RowBatch(
        index=[0, 1, 2],
        date=[dt.date(2017, 8, 16), dt.date(2017, 8, 17), dt.date(2017, 12, 25)],
        store_nbr=[1, 54, 7],
        family=["LIQUOR,WINE,BEER", 'CAFÉ "NOIR"', "BREAD/BAKERY"],
        onpromotion=[0, 3, 0],
        id=[3000888, None, 0],
    )
    sales, models = [0.1 + 0.2, 1234567.891, 0.0], ["hybrid", "zero_rule", "closed"]
    expected = {
        "model_version": 'v"1',
        "predictions": [
            {
                **({} if batch.id[k] is None else {"id": batch.id[k]}),
                "date": batch.date[k].isoformat(),
                "store_nbr": batch.store_nbr[k],
                "family": batch.family[k],
                "sales": sales[k],
                "model": models[k],
                "closed": models[k] == "closed",
            }
            for k in range(3)
        ],
    }
    assert render_predictions(batch, sales, models, 'v"1') == json.dumps(expected).encode()
