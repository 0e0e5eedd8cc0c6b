"""POST /api/v1/actuals: the history end moves, appends are idempotent, conflicts are 409.

Implausible values are 422 unless confirmed (promise 32); corrections are explicit, applied to
the history and the prediction log and audited in both (promise 33): tested over a real bundle.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from api_helpers import day, series_rows, wait_ready
from fastapi.testclient import TestClient
from naive_backend import FAMILIES, STORES, SeasonalNaivePredictor

from retail_forecast.app import create_app
from retail_forecast.bundle_contents import HISTORY_DAYS
from retail_forecast.config import MonitoringConfig
from retail_forecast.storage import MAX_SALES

sys.path.insert(0, str(Path(__file__).parents[2] / "inference"))

from bundle_helpers import TinyBundle, build_tiny_bundle

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


# --- promise 32: implausible actuals; promise 33: corrections (a real bundle, real SQLite) ------


@pytest.mark.parametrize(
    ("field", "value"),
    [("sales", 1e10), ("confirm_spike", "yes"), ("confirm_spike", 1), ("correction", None)],
)
def test_p32_bad_flags_and_sales_above_the_ceiling_are_422(
    client: TestClient, field: str, value: Any
) -> None:
    rows = actual_rows(1)
    rows[2][field] = value
    response = client.post(URL, json={"rows": rows})
    assert response.status_code == 422, response.text
    assert f"rows[2].{field}" in {i["field"] for i in response.json()["detail"]}
    assert client.get("/api/v1/models").json()["domain"]["history_end"] == "2017-08-15"


def test_p32_openapi_publishes_the_sales_bounds_and_the_flags(client: TestClient) -> None:
    row = client.get("/openapi.json").json()["components"]["schemas"]["ActualsRow"]
    sales = row["properties"]["sales"]
    assert sales["maximum"] == MAX_SALES
    assert sales["x-plausible-maximum"] == 100.0  # 10 x 10: every series accepts this
    assert sales["x-spike-rule"] == {"factor": 10.0, "floor": 10.0}
    for flag in ("confirm_spike", "correction"):
        assert row["properties"][flag]["type"] == "boolean"
        assert flag not in row["required"]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> TinyBundle:
    return build_tiny_bundle(tmp_path_factory.mktemp("actuals-bundle"))


@contextmanager
def serve_bundle(bundle: TinyBundle, root: Path) -> Iterator[TestClient]:
    """The real app over the bundle's LocalPredictor (SQLite history and monitoring log)."""
    settings = bundle.settings(root / "history").model_copy(
        update={"monitoring": MonitoringConfig(db_path=root / "monitoring.sqlite")}
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        wait_ready(client, timeout=60)
        yield client


def window_max(bundle: TinyBundle) -> pd.Series:
    """Each series' highest sales over the history the store starts from (the bundle's tail)."""
    sales = bundle.sales
    tail = sales[sales["date"] > sales["date"].max() - pd.Timedelta(days=HISTORY_DAYS)]
    return tail.groupby(["store_nbr", tail["family"].astype(str)])["sales"].max()


def day_rows(bundle: TinyBundle, k: int = 1) -> list[dict[str, Any]]:
    """Plausible actuals for every series on history end + k: each series' last value."""
    last = bundle.sales[bundle.sales["date"] == bundle.sales["date"].max()]
    end = bundle.sales["date"].max().date()
    return [
        {
            "date": (end + dt.timedelta(days=k)).isoformat(),
            "store_nbr": int(r.store_nbr),
            "family": str(r.family),
            "onpromotion": 0,
            "sales": float(r.sales),
        }
        for r in last.itertuples()
    ]


def forecast(client: TestClient, row: dict[str, Any], end: str) -> list[float]:
    first = dt.date.fromisoformat(end)
    rows = [
        {
            "date": (first + dt.timedelta(days=k)).isoformat(),
            "store_nbr": row["store_nbr"],
            "family": row["family"],
            "onpromotion": 0,
        }
        for k in range(1, 17)
    ]
    response = client.post(PREDICT, json={"rows": rows})
    assert response.status_code == 200, response.text
    return [p["sales"] for p in response.json()["predictions"]]


def series_jump(client: TestClient) -> dict[str, Any]:
    body = client.get("/api/v1/monitoring/drift").json()
    check = next(c for c in body["checks"] if c["name"] == "series_jump")
    return {"status": body["status"], **check}


def test_p32_a_typo_is_422_a_confirmed_spike_is_stored_and_drift_flags_it(
    bundle: TinyBundle, tmp_path: Path
) -> None:
    """The issue's reproduction: one typo poisoned the forecasts and drift still said ok."""
    rows = day_rows(bundle)
    k = max(range(len(rows)), key=lambda i: rows[i]["sales"])  # the busiest series
    level = float(window_max(bundle)[(rows[k]["store_nbr"], rows[k]["family"])])
    typo = min(rows[k]["sales"] * 10_000, MAX_SALES)
    with serve_bundle(bundle, tmp_path) as client:
        end = client.get("/api/v1/models").json()["domain"]["history_end"]
        assert series_jump(client)["drifted"] is False
        rows[k]["sales"] = typo
        refused = client.post(URL, json={"rows": rows})
        assert refused.status_code == 422, refused.text
        body = refused.json()
        assert body["bad_rows"] == [k]
        (item,) = body["detail"]
        assert (item["field"], item["type"]) == (f"rows[{k}].sales", "sales_implausible")
        bound = 10 * max(level, 10.0)
        assert body["allowed"]["sales"]["max_without_confirm_spike"] == {str(k): bound}
        assert f"at most {bound:.6g}" in item["msg"]
        assert client.get("/api/v1/models").json()["domain"]["history_end"] == end
        rows[k]["confirm_spike"] = True
        stored = client.post(URL, json={"rows": rows})
        assert stored.status_code == 200, stored.text
        assert stored.json()["appended"] == len(rows)
        day1 = stored.json()["history_end"]
        assert day1 > end
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no overflow anywhere on the way
            assert all(np.isfinite(forecast(client, rows[k], day1)))
        jump = series_jump(client)
    assert jump["status"] == "drift"
    assert jump["drifted"] is True
    assert jump["details"]["examples"][0]["series"] == f"{rows[k]['store_nbr']}|{rows[k]['family']}"
    assert jump["details"]["examples"][0]["peak_sales"] == pytest.approx(typo)


def test_p33_a_correction_restores_the_forecast_in_both_stores_audited(
    bundle: TinyBundle, tmp_path: Path
) -> None:
    """A confirmed typo, then its correction: forecasts as if the right value had been sent."""
    rows = day_rows(bundle)
    k = max(range(len(rows)), key=lambda i: rows[i]["sales"])
    with serve_bundle(bundle, tmp_path / "right") as client:
        right = client.post(URL, json={"rows": rows}).json()["history_end"]
        expected = forecast(client, rows[k], right)
    spiked = [dict(r) for r in rows]
    spiked[k].update(sales=rows[k]["sales"] * 10_000, confirm_spike=True)
    with serve_bundle(bundle, tmp_path / "fixed") as client:
        end = client.post(URL, json={"rows": spiked}).json()["history_end"]
        assert forecast(client, rows[k], end) != expected  # the typo moved the forecast
        conflict = client.post(URL, json={"rows": rows})
        assert conflict.status_code == 409
        assert '"correction": true' in conflict.json()["message"]
        fix = [dict(rows[k], correction=True)]
        fixed = client.post(URL, json={"rows": fix}, headers={"X-Request-ID": "fix-0001"})
        assert fixed.status_code == 200, fixed.text
        assert fixed.json()["appended"] == 1
        assert forecast(client, rows[k], end) == expected
        assert client.post(URL, json={"rows": rows}).json()["appended"] == 0  # the record now
        assert series_jump(client)["drifted"] is False  # not the cached answer of the spike
        state = client.app.state.service  # type: ignore[attr-defined]
        assert state.recorder.flush(10.0)
    key = (rows[k]["date"], rows[k]["store_nbr"], rows[k]["family"])
    history_db = tmp_path / "fixed" / "history" / f"{bundle.version}.sqlite"
    log_db = tmp_path / "fixed" / "monitoring.sqlite"
    for db in (history_db, log_db):
        with sqlite3.connect(db) as conn:
            audit = conn.execute(
                "SELECT date, store_nbr, family, old_sales, new_sales, request_id FROM corrections"
            ).fetchall()
        assert audit == [(*key, spiked[k]["sales"], rows[k]["sales"], "fix-0001")], db
    with sqlite3.connect(log_db) as conn:
        logged = conn.execute(
            "SELECT sales FROM actuals WHERE date = ? AND store_nbr = ? AND family = ?", key
        ).fetchone()
    assert logged == (rows[k]["sales"],)  # the accuracy monitoring scores the corrected value
