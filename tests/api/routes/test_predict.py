"""POST /api/v1/predict: happy paths and docs/RELIABILITY.md's bad inputs (promises 4, 18, 19)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from api_helpers import HISTORY_END, all_rows, day, series_rows, serve
from fastapi.testclient import TestClient
from naive_backend import DEAD_SERIES, FAMILIES, SeasonalNaivePredictor, make_history

URL = "/api/v1/predict"
HEADERS = {"Content-Type": "application/json"}


def post_raw(client: TestClient, text: str | bytes, **headers: str) -> Any:
    body = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    return client.post(URL, content=body, headers={**HEADERS, **headers})


def row(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"date": day(1), "store_nbr": 1, "family": "BEVERAGES", "onpromotion": 0}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not _DROP}


_DROP = object()


def assert_422_names(response: Any, field: str) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    body = response.json()
    assert field in {item["field"] for item in body["detail"]}, body
    return body


# --- happy paths -----------------------------------------------------------------------------


def test_predict_one_series_matches_seasonal_naive(
    client: TestClient, predictor: SeasonalNaivePredictor
) -> None:
    rows = series_rows(store=2, family="GROCERY I", days=7, promo=3)
    response = client.post(URL, json={"rows": rows})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] == "naive-test-1"
    got = [(p["date"], p["store_nbr"], p["family"]) for p in body["predictions"]]
    assert got == [(r["date"], r["store_nbr"], r["family"]) for r in rows]
    for p in body["predictions"]:
        want = predictor.expected(2, "GROCERY I", dt.date.fromisoformat(p["date"]), 3)
        assert p["sales"] == pytest.approx(want)
        assert p["model"] == "hybrid"
        assert p["closed"] is False
        assert "id" not in p


def test_predict_keeps_request_order_and_ids_across_series(client: TestClient) -> None:
    rows = series_rows(1, "AUTOMOTIVE", 3) + series_rows(3, "BEVERAGES", 3)
    rows = [dict(r, id=1000 + i) for i, r in enumerate(rows)][::-1]  # reversed on purpose
    body = client.post(URL, json={"rows": rows}).json()
    assert [p["id"] for p in body["predictions"]] == [r["id"] for r in rows]
    by_id = {p["id"]: p for p in body["predictions"]}
    for r in rows:
        assert by_id[r["id"]]["store_nbr"] == r["store_nbr"]
        assert by_id[r["id"]]["date"] == r["date"]


def test_predict_all_series_16_days_and_zero_rule(client: TestClient) -> None:
    rows = all_rows(16)
    body = client.post(URL, json={"rows": rows}).json()
    assert len(body["predictions"]) == len(rows) == 3 * len(FAMILIES) * 16
    dead = [p for p in body["predictions"] if (p["store_nbr"], p["family"]) == DEAD_SERIES]
    assert {p["model"] for p in dead} == {"zero_rule"}
    assert all(p["sales"] == 0.0 for p in dead)
    assert all(p["sales"] >= 0 for p in body["predictions"])


def test_predict_on_dec_25_answers_closed_with_zero() -> None:
    end = dt.date(2016, 12, 20)  # window 2016-12-21 .. 2017-01-05 holds 25 December
    predictor = SeasonalNaivePredictor(make_history(end))
    rows = series_rows(1, "BEVERAGES", 8, end=end)
    with serve(predictor) as client:
        response = client.post(URL, json={"rows": rows})
    assert response.status_code == 200, response.text
    preds = {p["date"]: p for p in response.json()["predictions"]}
    assert preds["2016-12-25"] == {
        **preds["2016-12-25"],
        "sales": 0.0,
        "closed": True,
        "model": "closed",
    }
    assert all(p["closed"] is False for d, p in preds.items() if d != "2016-12-25")
    # Day 26 needs day 25 of nothing: closing days are exempt from the complete-prefix rule.
    no_xmas = [r for r in rows if r["date"] != "2016-12-25"]
    with serve(predictor) as client:
        assert client.post(URL, json={"rows": no_xmas}).status_code == 200


# --- the bad-input table ------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, 4, -1, 2**63])
def test_p19_store_out_of_range_names_the_range(client: TestClient, value: int) -> None:
    body = assert_422_names(
        client.post(URL, json={"rows": [row(store_nbr=value)]}), "rows[0].store_nbr"
    )
    msg = next(i["msg"] for i in body["detail"] if i["field"] == "rows[0].store_nbr")
    assert "1-3" in msg
    assert body["allowed"]["store_nbr"] == [1, 2, 3]


@pytest.mark.parametrize("value", ["1", 1.0, 1.5, True, None])
def test_p19_store_must_be_a_strict_int(client: TestClient, value: Any) -> None:
    assert_422_names(client.post(URL, json={"rows": [row(store_nbr=value)]}), "rows[0].store_nbr")


@pytest.mark.parametrize(
    "value", ["grocery i", "GROCERY I ", "GR\u041eCERY I", "", "http://169.254.169.254/x"]
)
def test_p19_unknown_family_lists_the_families(client: TestClient, value: str) -> None:
    body = assert_422_names(client.post(URL, json={"rows": [row(family=value)]}), "rows[0].family")
    assert body["allowed"]["family"] == sorted(FAMILIES)
    assert value not in json.dumps(body) or value == ""


@pytest.mark.parametrize(
    "value", ["2012-12-31", "0001-01-01", "2017-08-10", HISTORY_END.isoformat(), "2017-09-01"]
)
def test_p19_date_outside_the_window_names_the_window(client: TestClient, value: str) -> None:
    body = assert_422_names(client.post(URL, json={"rows": [row(date=value)]}), "rows[0].date")
    msg = next(i["msg"] for i in body["detail"] if i["field"] == "rows[0].date")
    assert "2017-08-16" in msg
    assert "2017-08-31" in msg
    assert body["allowed"]["date"] == {"min": "2017-08-16", "max": "2017-08-31"}


@pytest.mark.parametrize("value", ["2017-02-29", "16/08/2017", "20170816", 1502841600, "2017-8-16"])
def test_p19_date_must_be_iso(client: TestClient, value: Any) -> None:
    body = assert_422_names(client.post(URL, json={"rows": [row(date=value)]}), "rows[0].date")
    assert "YYYY-MM-DD" in body["detail"][0]["msg"]


def test_p19_leap_day_parses_then_fails_only_the_window(client: TestClient) -> None:
    body = assert_422_names(
        client.post(URL, json={"rows": [row(date="2016-02-29")]}), "rows[0].date"
    )
    assert [i["type"] for i in body["detail"]] == ["date_out_of_window"]


@pytest.mark.parametrize("value", [-1, 3.7, "3", True, 51, 10**9, 2**63])
def test_p19_onpromotion_strict_and_capped(client: TestClient, value: Any) -> None:
    body = assert_422_names(
        client.post(URL, json={"rows": [row(onpromotion=value)]}), "rows[0].onpromotion"
    )
    if isinstance(value, int) and not isinstance(value, bool) and value > 50:
        assert "50" in body["detail"][0]["msg"]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"])
@pytest.mark.parametrize("field", ["store_nbr", "onpromotion", "id"])
def test_p18_nan_and_infinity_are_422(client: TestClient, field: str, literal: str) -> None:
    text = json.dumps({"rows": [row(id=1)]}).replace(
        f'"{field}": 1' if field != "onpromotion" else '"onpromotion": 0', f'"{field}": {literal}'
    )
    assert literal in text
    response = post_raw(client, text)
    assert response.status_code == 422, response.text
    assert response.json()["error"] in {"json_invalid", "validation_error"}


@pytest.mark.parametrize(
    "text",
    [
        '{"rows": [{"date": "2017-08-16", "store_nbr": 1, "family": "\\ud800", "onpromotion": 0}]}',
        '{"rows": [{"date": "\\ud800", "store_nbr": 1, "family": "BEVERAGES", "onpromotion": 0}]}',
        '{"rows": [{"date": "2017-08-16", "store_nbr": 1, "family": "A\\u0000", '
        '"onpromotion": 0}]}',
        '{"rows": [{"\\ud800": 1, "date": "2017-08-16", "store_nbr": 1, "family": "BEVERAGES", '
        '"onpromotion": 0}]}',
        '{"\\udfff": [], "rows": []}',
    ],
)
def test_p10_lone_surrogate_and_nul_are_422(client: TestClient, text: str) -> None:
    response = post_raw(client, text)
    assert response.status_code == 422, response.text
    assert "\\ud800" not in response.text
    assert "\\udfff" not in response.text


def test_p19_duplicate_json_keys_are_422(client: TestClient) -> None:
    text = (
        '{"rows": [{"date": "2017-08-16", "store_nbr": 1, "store_nbr": 2, '
        '"family": "BEVERAGES", "onpromotion": 0}]}'
    )
    response = post_raw(client, text)
    assert response.status_code == 422
    assert response.json()["error"] == "json_invalid"
    assert "key" in response.json()["message"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"color": "red"}, "rows[0].color"),
        ({"family": _DROP}, "rows[0].family"),
        ({"date": _DROP}, "rows[0].date"),
        ({"id": None}, "rows[0].id"),
        ({"id": -5}, "rows[0].id"),
    ],
)
def test_p19_extra_or_missing_field_is_named(
    client: TestClient, changes: dict[str, Any], field: str
) -> None:
    assert_422_names(client.post(URL, json={"rows": [row(**changes)]}), field)


def test_p19_unknown_top_level_field(client: TestClient) -> None:
    response = client.post(URL, json={"rows": [row()], "horizon": 16})
    assert_422_names(response, "horizon")


@pytest.mark.parametrize(
    "text", ['{"rows": [', "{'rows': []}", '{"rows": [1,],}', "", "null", '["rows"]']
)
def test_p19_malformed_json_is_422(client: TestClient, text: str) -> None:
    response = post_raw(client, text)
    assert response.status_code == 422
    assert response.json()["error"] in {"json_invalid", "validation_error"}


def test_p19_deep_nesting_is_422_not_recursion_error(client: TestClient) -> None:
    response = post_raw(client, "[" * 10_000 + "]" * 10_000)
    assert response.status_code in (400, 422)
    response = post_raw(client, '{"rows": ' + "[" * 10_000 + "]" * 10_000 + "}")
    assert response.status_code in (400, 422)
    assert response.json()["error"] == "json_invalid"


def test_p19_zero_rows_is_422(client: TestClient) -> None:
    assert_422_names(client.post(URL, json={"rows": []}), "rows")


def test_p19_duplicate_rows_list_every_index(client: TestClient) -> None:
    rows = series_rows(days=3)
    rows.append(dict(rows[1]))
    body = assert_422_names(client.post(URL, json={"rows": rows}), "rows[3]")
    assert body["bad_rows"] == [1, 3]


def test_p19_mixed_valid_and_invalid_lists_every_bad_row_and_predicts_nothing(
    client: TestClient, predictor: SeasonalNaivePredictor
) -> None:
    calls = predictor.calls
    rows = series_rows(days=6)
    rows[1]["store_nbr"] = "1"
    rows[3]["family"] = "NOPE"
    rows[4]["onpromotion"] = -2
    response = client.post(URL, json={"rows": rows})
    body = assert_422_names(response, "rows[3].family")
    assert body["bad_rows"] == [1, 3, 4]
    assert "predictions" not in body
    assert predictor.calls == calls


def test_p19_missing_earlier_days_name_the_missing_rows(client: TestClient) -> None:
    rows = series_rows(store=2, family="BEVERAGES", days=5)
    del rows[1:3]  # days 2 and 3 missing, day 5 asked
    body = assert_422_names(client.post(URL, json={"rows": rows}), "rows")
    assert body["missing_rows"] == [
        {"date": day(2), "store_nbr": 2, "family": "BEVERAGES"},
        {"date": day(3), "store_nbr": 2, "family": "BEVERAGES"},
    ]


def test_p19_error_bodies_never_echo_the_input(client: TestClient) -> None:
    canary = "CANARY-" + "x" * 100_000
    response = client.post(URL, json={"rows": [row(family=canary), row(zzz=canary)]})
    assert response.status_code == 422
    assert "CANARY" not in response.text
    assert len(response.content) < 5_000


def test_p04_more_than_max_rows_is_413(predictor: SeasonalNaivePredictor) -> None:
    with serve(predictor, max_rows=20) as client:
        ok = client.post(URL, json={"rows": all_rows(16)[:20]})
        assert ok.status_code == 200  # 20 rows pass the count check
        response = client.post(URL, json={"rows": all_rows(16)[:21]})
    assert response.status_code == 413
    assert "20" in response.json()["message"]


def test_p08_memory_stays_flat_over_many_predictions(predictor: SeasonalNaivePredictor) -> None:
    import gc
    import tracemalloc

    from retail_forecast.api.predict_service import answer_predict

    body = json.dumps({"rows": series_rows(store=2, family="GROCERY I", days=3)}).encode()
    bad = json.dumps({"rows": [row(store_nbr=99)]}).encode()

    def burst(n: int) -> None:
        for _ in range(n):
            answer_predict(body, predictor=predictor, max_rows=100)  # type: ignore[arg-type]
            with pytest.raises(Exception, match="invalid"):
                answer_predict(bad, predictor=predictor, max_rows=100)  # type: ignore[arg-type]

    burst(200)
    tracemalloc.start()
    try:
        gc.collect()  # pandas leaves reference cycles: count only what survives a collection
        before = tracemalloc.take_snapshot()
        burst(400)
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    growth = sum(s.size_diff for s in after.compare_to(before, "filename"))
    assert growth < 256 * 1024, f"grew {growth} bytes over 400 request pairs"
