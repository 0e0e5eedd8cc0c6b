"""POST /api/v1/actuals: the history end moves, appends are idempotent, conflicts are 409."""

from __future__ import annotations

from typing import Any

import pytest
from api_helpers import day, series_rows
from fastapi.testclient import TestClient
from naive_backend import FAMILIES, STORES, SeasonalNaivePredictor

URL = "/api/v1/actuals"
PREDICT = "/api/v1/predict"


def actual_rows(k: int, sales: float = 7.0) -> list[dict[str, Any]]:
    return [
        {"date": day(k), "store_nbr": s, "family": f, "onpromotion": 1, "sales": sales + s}
        for s in STORES
        for f in FAMILIES
    ]


def test_actuals_move_the_history_and_the_forecast_window(
    client: TestClient, predictor: SeasonalNaivePredictor
) -> None:
    response = client.post(URL, json={"rows": actual_rows(1)})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "model_version": "naive-test-1",
        "received": 12,
        "appended": 12,
        "history_end": day(1),
    }
    # Day 1 is now history: asking for it is outside the window; day 17 is inside.
    old = client.post(PREDICT, json={"rows": series_rows(days=1)})
    assert old.status_code == 422
    new_rows = [dict(r, date=day(k + 1)) for k, r in enumerate(series_rows(days=16), start=1)]
    body = client.post(PREDICT, json={"rows": new_rows}).json()
    assert body["predictions"][-1]["date"] == day(17)
    # Day 8 of the new window is seasonal-naive from the appended day 1 (7 days before).
    day8 = next(p for p in body["predictions"] if p["date"] == day(8))
    assert day8["sales"] == pytest.approx(7.0 + 1)
    assert client.get("/api/v1/models").json()["domain"]["history_end"] == day(1)


def test_actuals_are_idempotent(client: TestClient) -> None:
    first = client.post(URL, json={"rows": actual_rows(1)}).json()
    again = client.post(URL, json={"rows": actual_rows(1)}).json()
    assert (first["appended"], again["appended"]) == (12, 0)
    assert again["history_end"] == first["history_end"] == day(1)


def test_conflicting_actuals_are_409_and_change_nothing(
    client: TestClient, predictor: SeasonalNaivePredictor
) -> None:
    assert client.post(URL, json={"rows": actual_rows(1)}).status_code == 200
    response = client.post(URL, json={"rows": actual_rows(1, sales=99.0)})
    assert response.status_code == 409
    assert response.json()["error"] == "conflict"
    assert "store_nbr=1" in response.json()["message"]
    assert client.post(URL, json={"rows": actual_rows(1)}).json()["appended"] == 0


def test_partial_actuals_do_not_move_the_history_end(client: TestClient) -> None:
    response = client.post(URL, json={"rows": actual_rows(1)[:5]})
    assert response.json()["appended"] == 5
    assert response.json()["history_end"] == "2017-08-15"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sales", -1.0),
        ("sales", "3"),
        ("sales", None),
        ("store_nbr", 9),
        ("family", "X"),
        ("date", day(17)),
        ("date", "0454-01-01"),  # found by Schemathesis: was a pandas OutOfBounds 500
        ("date", "2016-08-14"),
        ("onpromotion", 51),
        ("extra", 1),
    ],
)
def test_p19_bad_actuals_name_the_field(client: TestClient, field: str, value: Any) -> None:
    rows = actual_rows(1)
    rows[2][field] = value
    response = client.post(URL, json={"rows": rows})
    assert response.status_code == 422, response.text
    assert f"rows[2].{field}" in {i["field"] for i in response.json()["detail"]}
    assert response.json()["bad_rows"] == [2]
    assert client.get("/api/v1/models").json()["domain"]["history_end"] == "2017-08-15"


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_p18_non_finite_sales_are_422(client: TestClient, literal: str) -> None:
    text = (
        f'{{"rows": [{{"date": "{day(1)}", "store_nbr": 1, "family": "BEVERAGES", '
        f'"onpromotion": 0, "sales": {literal}}}]}}'
    )
    response = client.post(URL, content=text, headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    if "e999" in literal:  # parses to inf, refused by the field with its path named
        assert response.json()["detail"][0]["field"] == "rows[0].sales"
