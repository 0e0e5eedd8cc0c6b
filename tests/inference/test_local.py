"""LocalPredictor over a real tiny bundle: load, predict, refuse tampering, survive restarts."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from bundle_helpers import TinyBundle
from fastapi.testclient import TestClient

from retail_forecast.app import create_app
from retail_forecast.artifacts import ModelBundle
from retail_forecast.errors import (
    ArtifactError,
    DataValidationError,
    StoreReadOnlyError,
    UnknownSeriesError,
)
from retail_forecast.inference.local import LocalPredictor
from retail_forecast.inference.predictor import MonitoringSource, Predictor
from retail_forecast.schema import DATE, FAMILY, PROMO, STORE, TARGET


def request_rows(
    test: pd.DataFrame, *, series: list[tuple[int, str]] | None = None
) -> pd.DataFrame:
    """test.csv rows (without id) shaped as the API hands them to the predictor."""
    rows = test.drop(columns="id")
    if series is not None:
        keys = list(zip(rows[STORE], rows[FAMILY].astype(str), strict=True))
        rows = rows[[key in set(series) for key in keys]]
    return rows.reset_index(drop=True)


@pytest.fixture
def predictor(tiny_bundle: TinyBundle, tmp_path: Path) -> LocalPredictor:
    loaded = LocalPredictor.load(tiny_bundle.settings(tmp_path / "history"))
    yield loaded
    loaded.close()


def test_load_gives_the_bundle_domain(predictor: LocalPredictor, tiny_bundle: TinyBundle) -> None:
    assert isinstance(predictor, Predictor)
    domain = predictor.domain
    assert predictor.model_version == tiny_bundle.version
    assert domain.history_end == tiny_bundle.sales[DATE].max().date()
    assert domain.stores == (1, 2, 3)
    assert len(domain.families) == 4
    assert domain.onpromotion_cap == 10 * int(tiny_bundle.sales[PROMO].max())
    details = predictor.describe()
    assert details["version"] == tiny_bundle.version
    assert set(details["metrics"]["mean_rmsle"]) >= {"hybrid", "xgboost", "lstm"}


def test_predict_one_series_equals_the_model_on_the_full_history(
    predictor: LocalPredictor, tiny_bundle: TinyBundle
) -> None:
    rows = request_rows(tiny_bundle.test, series=[(2, predictor.domain.families[1])])
    rows = rows.sample(frac=1.0, random_state=0)  # any order; the answer keeps it
    out = predictor.predict(rows)
    expected = predictor.model.predict(tiny_bundle.sales, rows)
    assert len(out) == 16
    assert out.index.equals(rows.index)
    assert out[DATE].equals(rows[DATE])
    assert np.isfinite(out[TARGET]).all()
    assert (out[TARGET] >= 0).all()
    np.testing.assert_array_equal(out[TARGET].to_numpy(), expected[TARGET].to_numpy())
    assert out["model"].tolist() == expected["model"].tolist()


def test_predict_all_series(predictor: LocalPredictor, tiny_bundle: TinyBundle) -> None:
    rows = request_rows(tiny_bundle.test)
    out = predictor.predict(rows)
    expected = predictor.model.predict(tiny_bundle.sales, rows)
    assert len(out) == 3 * 4 * 16
    np.testing.assert_array_equal(out[TARGET].to_numpy(), expected[TARGET].to_numpy())
    assert set(out["model"]) <= {"hybrid", "xgboost", "lstm", "zero_rule"}
    assert out[TARGET].sum() > 0


def test_predict_from_an_explicit_history_equals_predict(
    predictor: LocalPredictor, tiny_bundle: TinyBundle
) -> None:
    out = predictor.predict_from(tiny_bundle.sales, tiny_bundle.test)
    served = predictor.predict(request_rows(tiny_bundle.test))
    assert out["id"].tolist() == tiny_bundle.test["id"].tolist()
    np.testing.assert_array_equal(out[TARGET].to_numpy(), served[TARGET].to_numpy())


def test_rows_outside_the_window_or_domain_are_refused(
    predictor: LocalPredictor, tiny_bundle: TinyBundle
) -> None:
    rows = request_rows(tiny_bundle.test).head(3).copy()
    late = rows.assign(**{DATE: rows[DATE] + pd.Timedelta(days=16)})
    with pytest.raises(DataValidationError, match="must be dated"):
        predictor.predict(late)
    unknown = rows.assign(**{FAMILY: "NOT A FAMILY"})
    with pytest.raises(UnknownSeriesError, match="NOT A FAMILY"):
        predictor.predict(unknown)


def test_concurrent_predictions_equal_serial_ones(
    predictor: LocalPredictor, tiny_bundle: TinyBundle
) -> None:
    families = predictor.domain.families
    requests = [
        request_rows(tiny_bundle.test, series=[(s, f)]) for s in (1, 2, 3) for f in families
    ]
    serial = [predictor.predict(r)[TARGET].to_numpy() for r in requests]
    results: dict[int, list[np.ndarray]] = {}
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            results[k] = [predictor.predict(r)[TARGET].to_numpy() for r in requests]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    for k in range(4):
        for got, want in zip(results[k], serial, strict=True):
            np.testing.assert_array_equal(got, want)


def first_day_actuals(tiny_bundle: TinyBundle, day: int = 1) -> pd.DataFrame:
    rows = request_rows(tiny_bundle.test)
    first = rows[rows[DATE] == rows[DATE].min() + pd.Timedelta(days=day - 1)].copy()
    first[TARGET] = np.arange(len(first), dtype=np.float64) + 1.5
    return first.reset_index(drop=True)


def test_restart_keeps_appended_actuals(tiny_bundle: TinyBundle, tmp_path: Path) -> None:
    settings = tiny_bundle.settings(tmp_path / "history")
    before = LocalPredictor.load(settings)
    end = before.domain.history_end
    actuals = first_day_actuals(tiny_bundle)
    assert before.append_actuals(actuals) == 12
    assert before.append_actuals(actuals) == 0  # idempotent
    assert before.domain.history_end == end + pd.Timedelta(days=1)
    before.close()

    after = LocalPredictor.load(settings)
    try:
        assert after.domain.history_end == end + pd.Timedelta(days=1)
        # The window moved: the old first day is history now, day 17 is forecastable.
        rows = request_rows(tiny_bundle.test, series=[(1, after.domain.families[0])])
        shifted = rows.assign(**{DATE: rows[DATE] + pd.Timedelta(days=1)})
        out = after.predict(shifted)
        extended = pd.concat(
            [tiny_bundle.sales, actuals.assign(is_closed=False)], ignore_index=True
        ).sort_values([STORE, FAMILY, DATE], ignore_index=True)
        expected = after.model.predict(extended, shifted)
        np.testing.assert_array_equal(out[TARGET].to_numpy(), expected[TARGET].to_numpy())
        with pytest.raises(DataValidationError):
            after.predict(rows)
    finally:
        after.close()


def test_a_new_bundle_version_starts_from_its_own_history(
    tiny_bundle: TinyBundle, tmp_path: Path
) -> None:
    history = tmp_path / "history"
    predictor = LocalPredictor.load(tiny_bundle.settings(history))
    predictor.append_actuals(first_day_actuals(tiny_bundle))
    predictor.close()
    assert sorted(p.name for p in history.glob("*.sqlite")) == [f"{tiny_bundle.version}.sqlite"]


def tampered_copy(tiny_bundle: TinyBundle, tmp_path: Path) -> Path:
    root = tmp_path / "artifacts"
    shutil.copytree(tiny_bundle.artifacts, root)
    model = root / tiny_bundle.version / "xgboost" / "model.ubj"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    return root


def test_p12_tampered_bundle_is_refused(tiny_bundle: TinyBundle, tmp_path: Path) -> None:
    root = tampered_copy(tiny_bundle, tmp_path)
    with pytest.raises(ArtifactError, match=r"model\.ubj"):
        LocalPredictor.load(tiny_bundle.settings(tmp_path / "history", artifacts=root))
    assert not (tmp_path / "history").exists()  # nothing was opened for a refused bundle


def test_p12_tampered_bundle_keeps_ready_503(tiny_bundle: TinyBundle, tmp_path: Path) -> None:
    root = tampered_copy(tiny_bundle, tmp_path)
    app = create_app(tiny_bundle.settings(tmp_path / "history", artifacts=root))
    with TestClient(app, raise_server_exceptions=False) as client:
        deadline = time.monotonic() + 20
        while client.get("/ready").json().get("status") == "loading":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert "model.ubj" not in ready.text  # the reason is generic; details go to the log
        assert client.get("/health").status_code == 503  # a failed load is permanent: restart
        row = {"date": "2017-08-16", "store_nbr": 1, "family": "AUTOMOTIVE", "onpromotion": 0}
        assert client.post("/api/v1/predict", json={"rows": [row]}).status_code == 503


def test_local_predictor_feeds_the_monitoring_endpoints(
    tiny_bundle: TinyBundle, tmp_path: Path
) -> None:
    """LocalPredictor implements MonitoringSource: history, reference profile and metrics."""
    bundle = ModelBundle.open_current(tiny_bundle.artifacts)
    predictor = LocalPredictor.from_bundle(bundle, history_db=tmp_path / "h.sqlite")
    try:
        assert isinstance(predictor, MonitoringSource)
        history = predictor.history_frame()
        assert history["date"].max().date() == predictor.domain.history_end
        reference = predictor.reference_profile()
        assert reference is not None
        assert not reference.empty
        metrics = predictor.backtest_metrics()
        assert metrics is not None
        assert "mean" in metrics
    finally:
        predictor.close()


def test_p30_a_history_dir_that_cannot_be_created_serves_the_bundle_history_read_only(
    predictor: LocalPredictor, tiny_bundle: TinyBundle, tmp_path: Path
) -> None:
    regular = tmp_path / "a-file"
    regular.write_text("x")
    degraded = LocalPredictor.load(tiny_bundle.settings(regular / "history"))
    try:
        assert predictor.degraded_reason is None
        reason = degraded.degraded_reason
        assert reason is not None
        assert "not a directory" in reason
        assert degraded.domain == predictor.domain
        rows = request_rows(tiny_bundle.test)
        np.testing.assert_array_equal(
            degraded.predict(rows)[TARGET].to_numpy(), predictor.predict(rows)[TARGET].to_numpy()
        )
        db_path = regular / "history" / f"{tiny_bundle.version}.sqlite"
        with pytest.raises(StoreReadOnlyError, match=str(db_path)):
            degraded.append_actuals(first_day_actuals(tiny_bundle))
        assert degraded.domain.history_end == predictor.domain.history_end
    finally:
        degraded.close()


def test_p31_a_full_disk_answers_507_and_nothing_of_the_request_is_written(
    tiny_bundle: TinyBundle, tmp_path: Path
) -> None:
    """Real SQLite: the store's connection may not grow the file by one page (SQLITE_FULL)."""
    app = create_app(tiny_bundle.settings(tmp_path / "history"))
    db_path = tmp_path / "history" / f"{tiny_bundle.version}.sqlite"
    rows = request_rows(tiny_bundle.test).assign(sales=2.5)  # 16 days x 12 series
    body = {
        "rows": [{**row, "date": row["date"].date().isoformat()} for row in rows.to_dict("records")]
    }

    def on_disk() -> tuple[int, str]:
        with sqlite3.connect(db_path) as conn:
            count = conn.execute("SELECT COUNT(*) FROM obs").fetchone()[0]
            end = conn.execute("SELECT value FROM meta WHERE key = 'history_end'").fetchone()[0]
        return int(count), str(end)

    with TestClient(app, raise_server_exceptions=False) as client:
        deadline = time.monotonic() + 30
        while client.get("/ready").json().get("status") == "loading":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        conn = client.app.state.service.predictor.store._conn  # type: ignore[attr-defined]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")
        before = on_disk()
        full = client.post("/api/v1/actuals", json=body)
        assert full.status_code == 507, full.text
        assert full.json()["error"] == "insufficient_storage"
        assert str(db_path) in full.json()["message"]
        assert "retry-after" not in full.headers
        assert on_disk() == before
        models = client.get("/api/v1/models").json()
        assert models["domain"]["history_end"] == before[1]

        conn.execute("PRAGMA max_page_count = 1073741823")
        again = client.post("/api/v1/actuals", json=body)
        assert again.status_code == 200, again.text
        assert again.json()["appended"] == len(rows)  # none had been kept by the failed request
