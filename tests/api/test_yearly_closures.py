"""Yearly closures learned from the history: no date is a code default (issue: any retailer).

A real tiny bundle trained on generated files whose chain has no rows on 25 December in two
years: the data layer learns the closure, marks test.csv's 25 December closed, the bundle
records it, and the service answers it closed (the recursion reading it as a closure) exactly
as the batch path does. Data without such a day records none (tests/test_closed_days.py).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from api_helpers import serve

from retail_forecast.artifacts import ModelBundle
from retail_forecast.bundle_contents import recorded_closures
from retail_forecast.closed_days import YearlyClosures
from retail_forecast.data_processing.dataset import BuiltDataset, build_dataset
from retail_forecast.data_processing.synthetic import SyntheticConfig, write_dataset
from retail_forecast.errors import ArtifactError
from retail_forecast.inference.local import LocalPredictor
from retail_forecast.pipeline.fit import train_bundle
from retail_forecast.schema import DATE, FAMILY, IS_CLOSED, PROMO, STORE, TARGET

sys.path.insert(0, str(Path(__file__).parents[1] / "inference"))

from bundle_helpers import tiny_settings

END = dt.date(2017, 12, 20)  # the forecast window 21 December .. 5 January holds the 25th
CHRISTMAS = "2017-12-25"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, BuiltDataset]:
    root = tmp_path_factory.mktemp("yearly")
    data_dir = root / "data"
    write_dataset(
        data_dir, SyntheticConfig(n_stores=2, n_families=3, n_days=760, seed=5, end_date=END)
    )
    settings = tiny_settings(root)
    dataset = build_dataset(data_dir, settings.data)
    train_bundle(dataset, settings, out_dir=root / "artifacts")
    return root, dataset


def test_the_history_teaches_the_closure_and_test_csv_is_marked(
    trained: tuple[Path, BuiltDataset],
) -> None:
    root, dataset = trained
    sales = dataset.sales
    assert dataset.report.closures["yearly"] == ["12-25"]
    christmases = sales[sales[DATE].dt.strftime("%m-%d") == "12-25"]
    assert len(christmases) == 2 * 6  # 2015 and 2016, six series
    assert christmases[IS_CLOSED].all()
    assert (christmases[TARGET] == 0).all()
    assert dataset.test is not None
    test = dataset.test
    closed = test.loc[test[IS_CLOSED], DATE].dt.strftime("%Y-%m-%d")
    assert set(closed) == {CHRISTMAS}
    manifest = ModelBundle.open_current(root / "artifacts").manifest.metadata
    assert manifest["domain"]["yearly_closures"] == ["12-25"]


def test_the_service_answers_the_learned_closure_as_the_batch_path_does(
    trained: tuple[Path, BuiltDataset], tmp_path: Path
) -> None:
    root, dataset = trained
    bundle = ModelBundle.open_current(root / "artifacts")
    recent = dataset.sales[dataset.sales[DATE] > dataset.sales[DATE].max() - pd.Timedelta(28)]
    store, family = recent.groupby([STORE, recent[FAMILY].astype(str)])[TARGET].sum().idxmax()
    rows = [
        {
            "date": (END + dt.timedelta(days=k)).isoformat(),
            "store_nbr": int(store),
            "family": str(family),
            "onpromotion": k % 2,
        }
        for k in range(1, 17)
    ]
    served = LocalPredictor.from_bundle(bundle, history_db=tmp_path / "history.sqlite")
    assert served.domain.closures.to_json() == ["12-25"]
    with serve(loader=lambda _settings: served) as client:
        response = client.post("/api/v1/predict", json={"rows": rows})
    assert response.status_code == 200, response.text
    predictions = json.loads(response.content)["predictions"]
    closed = {p["date"]: p for p in predictions if p["closed"]}
    assert list(closed) == [CHRISTMAS]
    assert (closed[CHRISTMAS]["sales"], closed[CHRISTMAS]["model"]) == (0.0, "closed")
    assert all(p["sales"] > 0 for p in predictions if not p["closed"])

    frame = pd.DataFrame(
        {
            DATE: pd.to_datetime([r["date"] for r in rows]),
            STORE: np.array([r["store_nbr"] for r in rows], dtype=np.int64),
            FAMILY: pd.Categorical(
                [r["family"] for r in rows], categories=sorted(served.domain.families)
            ),
            PROMO: np.array([r["onpromotion"] for r in rows], dtype=np.int64),
            IS_CLOSED: np.array([r["date"] == CHRISTMAS for r in rows]),
        }
    )
    batch = LocalPredictor.from_bundle(bundle).predict_from(dataset.sales, frame)[TARGET]
    np.testing.assert_allclose([p["sales"] for p in predictions], batch.to_numpy(), rtol=1e-6)

    # a planner opens this 25 December: the explicit "open": 1 wins over what history taught
    opened = [dict(r, open=1) if r["date"] == CHRISTMAS else r for r in rows]
    with serve(loader=lambda _settings: served) as client:
        response = client.post("/api/v1/predict", json={"rows": opened})
    assert response.status_code == 200, response.text
    answered = {p["date"]: p for p in json.loads(response.content)["predictions"]}
    assert answered[CHRISTMAS]["closed"] is False
    assert answered[CHRISTMAS]["model"] != "closed"
    assert answered[CHRISTMAS]["sales"] > 0
    frame[IS_CLOSED] = False
    batch = LocalPredictor.from_bundle(bundle).predict_from(dataset.sales, frame)[TARGET]
    got = [answered[r["date"]]["sales"] for r in rows]
    np.testing.assert_allclose(got, batch.to_numpy(), rtol=1e-6)


def test_a_bundle_that_records_none_closes_what_its_code_then_closed() -> None:
    # bundles written before the closures were learned had one code rule: 25 December
    assert recorded_closures({}).to_json() == ["12-25"]
    assert recorded_closures({"yearly_closures": []}) == YearlyClosures()
    with pytest.raises(
        ArtifactError, match=r"bundle-x: yearly closure \(25, 12\) is no calendar day"
    ):
        recorded_closures({"yearly_closures": ["25-12"]}, source="bundle-x")
