"""Monitoring wired into the API, on the real data: request-path cost and a replay through HTTP.

Not a test. History = the real train parts up to 2017-07-30 (54 stores x 33 families); the model
is the vectorized seasonal naive of bench/api_overhead.py (so the numbers isolate monitoring),
extended with the MonitoringSource methods: a reference profile of its last 90 days and
backtest metrics of the same model on 2017-07-15..07-30 (origin 07-14). In process (ASGI, no
socket), the real app with its real PredictionLog writer thread:

1. request-path cost: the same requests with the recorder on and with the hand-over replaced by
   a no-op, alternating blocks (single series x 16 days, and all 1,782 series x 16 days);
2. replay 2017-07-31..08-15: one logged 28,512-row forecast, real actuals POSTed day by day,
   GET /monitoring/status after each day, accuracy per horizon day checked against the same
   numbers computed from the responses and the real sales; GET /monitoring/drift before/after.

    .venv/bin/python bench/monitoring_api.py [--data-dir ../shared/data/favorita-store-sales]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from api_overhead import DEFAULT_DATA, NaivePredictor, body_for
from fastapi.testclient import TestClient

from retail_forecast.api.deps import ServiceState
from retail_forecast.app import create_app
from retail_forecast.config import MonitoringConfig, Settings
from retail_forecast.monitoring.reference import reference_from_sales
from retail_forecast.schema import DATE, FAMILY, IS_CLOSED, PROMO, STORE, TARGET

ORIGIN = pd.Timestamp("2017-07-30")
BACKTEST_ORIGIN = pd.Timestamp("2017-07-14")


def load_frame(data_dir: Path) -> pd.DataFrame:
    """Canonical frame of the last four train parts (2017-03 .. 2017-08-15, no 25 December)."""
    parts = [data_dir / "train_parts" / f"df_train_part_{i}.parquet" for i in (27, 28, 29, 30)]
    raw = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    raw[DATE] = pd.to_datetime(raw[DATE])
    counts = raw.groupby(DATE).size()
    raw = raw[raw[DATE] >= counts.index[counts == 1782].min()]  # the first part starts mid-day
    raw[FAMILY] = pd.Categorical(raw[FAMILY], categories=sorted(raw[FAMILY].unique()))
    raw[IS_CLOSED] = False
    frame = raw[[DATE, STORE, FAMILY, TARGET, PROMO, IS_CLOSED]]
    return frame.sort_values([STORE, FAMILY, DATE], ignore_index=True)


def future_rows(frame: pd.DataFrame, origin: pd.Timestamp) -> pd.DataFrame:
    days = (frame[DATE] > origin) & (frame[DATE] <= origin + pd.Timedelta(days=16))
    return frame[days].reset_index(drop=True)


def horizon_rmsle(pred: pd.Series, actual: pd.Series, horizon: pd.Series) -> pd.Series:
    sq = (np.log1p(pred.to_numpy()) - np.log1p(actual.to_numpy())) ** 2
    return pd.Series(sq).groupby(horizon.to_numpy()).mean().pow(0.5)


def backtest_metrics(frame: pd.DataFrame) -> dict[str, Any]:
    """The same model's 1-fold backtest: origin 07-14, window 07-15..07-30."""
    model = NaivePredictor(frame[frame[DATE] <= BACKTEST_ORIGIN])
    window = future_rows(frame, BACKTEST_ORIGIN)
    out = model.predict(window[[DATE, STORE, FAMILY, PROMO]])
    horizon = (window[DATE] - BACKTEST_ORIGIN).dt.days
    per_day = horizon_rmsle(out[TARGET], window[TARGET], horizon)
    sq = (np.log1p(out[TARGET]) - np.log1p(window[TARGET])) ** 2
    return {
        "mean": {"hybrid": float(np.sqrt(sq.mean()))},
        "per_horizon_day": {str(h): {"hybrid": float(v)} for h, v in per_day.items()},
    }


class ReplayPredictor(NaivePredictor):
    """The bench naive model plus actuals that move the history end, and monitoring sources."""

    def __init__(self, history: pd.DataFrame, metrics: dict[str, Any]) -> None:
        super().__init__(history)
        self.history = history
        self.reference = reference_from_sales(history, days=90)
        self.metrics = metrics

    def append_actuals(self, rows: pd.DataFrame) -> int:
        new = rows.assign(**{IS_CLOSED: False})[[DATE, STORE, FAMILY, TARGET, PROMO, IS_CLOSED]]
        new[FAMILY] = pd.Categorical(new[FAMILY].astype(str), categories=self.families)
        before = len(self.history)
        merged = pd.concat([self.history, new], ignore_index=True)
        merged = merged.drop_duplicates([STORE, FAMILY, DATE], keep="first")
        self.history = merged.sort_values([STORE, FAMILY, DATE], ignore_index=True)
        counts = self.history.groupby(DATE).size()
        self.end = counts.index[counts == len(self.stores) * len(self.families)].max().date()
        return len(self.history) - before

    def history_frame(self) -> pd.DataFrame:
        return self.history

    def reference_profile(self) -> pd.DataFrame | None:
        return self.reference

    def backtest_metrics(self) -> dict[str, Any] | None:
        return self.metrics


def percentiles(values: list[float]) -> str:
    p50 = statistics.median(values) * 1e3
    if len(values) >= 100:
        p99 = statistics.quantiles(values, n=100)[98] * 1e3
        return f"p50 {p50:.2f} ms, p99 {p99:.2f} ms"
    return f"p50 {p50:.1f} ms, max {max(values) * 1e3:.1f} ms"


def timed_post(client: TestClient, url: str, body: bytes) -> float:
    started = time.perf_counter()
    response = client.post(url, content=body, headers={"Content-Type": "application/json"})
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text[:300]
    return elapsed


def ab_compare(client: TestClient, body: bytes, *, blocks: int, per_block: int) -> None:
    """Alternate blocks with the recorder on / hand-over no-op; print latency of each."""
    state: ServiceState = client.app.state.service  # type: ignore[attr-defined]
    real: Callable[..., bool] = state.recorder.record_predictions
    times: dict[str, list[float]] = {"on": [], "off": []}
    for block in range(2 * blocks):
        mode = "on" if block % 2 == 0 else "off"
        state.recorder.record_predictions = real if mode == "on" else (lambda _s: True)  # type: ignore[method-assign]
        for _ in range(per_block):
            times[mode].append(timed_post(client, "/api/v1/predict", body))
        state.recorder.flush(60)
    state.recorder.record_predictions = real  # type: ignore[method-assign]
    for mode, values in times.items():
        print(f"  monitoring {mode:>3}: {len(values)} requests, {percentiles(values)}")


def replay(client: TestClient, frame: pd.DataFrame, full: bytes) -> None:
    state: ServiceState = client.app.state.service  # type: ignore[attr-defined]
    started = time.perf_counter()
    served = client.post(
        "/api/v1/predict", content=full, headers={"Content-Type": "application/json"}
    ).json()["predictions"]
    request_s = time.perf_counter() - started
    state.recorder.flush(60)
    print(
        f"replay: forecast of {len(served):,} rows served in {request_s:.2f} s; "
        f"log written {time.perf_counter() - started - request_s:.2f} s after the answer"
    )
    truth = future_rows(frame, ORIGIN)
    post_s = []
    for day, rows in truth.groupby(DATE):
        body = {
            "rows": [
                {
                    "date": f"{day:%Y-%m-%d}",
                    "store_nbr": int(r.store_nbr),
                    "family": str(r.family),
                    "onpromotion": int(r.onpromotion),
                    "sales": float(r.sales),
                }
                for r in rows.itertuples()
            ]
        }
        post_s.append(timed_post(client, "/api/v1/actuals", json.dumps(body).encode()))
        state.recorder.flush(60)
        status = client.get("/api/v1/monitoring/status").json()
        print(
            f"  {day:%Y-%m-%d}: actuals POST {post_s[-1] * 1e3:.0f} ms; status {status['status']}"
            f" n={status['n']} rmsle={status['rmsle']} ratio={status['ratio']}"
        )
    started = time.perf_counter()
    final = client.get("/api/v1/monitoring/status").json()
    print(f"  GET /monitoring/status {1e3 * (time.perf_counter() - started):.0f} ms: {final}")
    print(f"  actuals POST of 1,782 rows: {percentiles(post_s)}")
    check_against_responses(served, truth, final)


def check_against_responses(
    served: list[dict[str, Any]], truth: pd.DataFrame, final: dict[str, Any]
) -> None:
    pred = pd.DataFrame(served)
    pred[DATE] = pd.to_datetime(pred[DATE])
    joined = pred.merge(
        truth[[DATE, STORE, FAMILY, TARGET]].astype({FAMILY: str}),
        on=[DATE, STORE, FAMILY],
        suffixes=("_pred", ""),
    )
    per_day = horizon_rmsle(joined["sales_pred"], joined[TARGET], (joined[DATE] - ORIGIN).dt.days)
    api = {row["horizon_day"]: row["rmsle"] for row in final["by_horizon_day"]}
    gaps = [abs(api[h] - per_day[h]) for h in api]
    print(
        f"  by_horizon_day (last {final['window_days']} scored days) vs responses x real sales:"
        f" days {sorted(api)}, max |gap| {max(gaps):.2e}"
    )
    print("  " + ", ".join(f"day {h}: {api[h]:.4f}" for h in sorted(api)))


def drift(client: TestClient, label: str) -> None:
    for attempt in ("first", "cached"):
        started = time.perf_counter()
        body = client.get("/api/v1/monitoring/drift").json()
        elapsed = time.perf_counter() - started
        print(
            f"drift {label} ({attempt}) {elapsed * 1e3:.0f} ms: {body['status']} window "
            f"{body['window']} rows {body['current_rows']:,} features {body['drifted_features']}"
            f" checks {body['drifted_checks']}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    frame = load_frame(args.data_dir)
    metrics = backtest_metrics(frame)
    predictor = ReplayPredictor(frame[frame[DATE] <= ORIGIN].reset_index(drop=True), metrics)
    print(f"history {frame[DATE].min():%Y-%m-%d}..{ORIGIN:%Y-%m-%d}; backtest {metrics['mean']}")
    one = body_for(predictor, (predictor.stores[0],), (predictor.families[0],))
    full = body_for(predictor, predictor.stores, predictor.families)
    with tempfile.TemporaryDirectory() as tmp:
        monitoring = MonitoringConfig(db_path=Path(tmp) / "monitoring.sqlite")
        settings = Settings(_env_file=None, monitoring=monitoring)  # type: ignore[call-arg]
        app = create_app(settings, load_predictor=lambda _s: predictor)
        with TestClient(app) as client:
            while client.get("/ready").status_code != 200:
                time.sleep(0.05)
            print("single series x 16 days:")
            ab_compare(client, one, blocks=10, per_block=30)
            print("all 1,782 series x 16 days (28,512 rows):")
            ab_compare(client, full, blocks=3, per_block=2)
            drift(client, "at 2017-07-30")
            replay(client, frame, full)
            drift(client, "at 2017-08-15")


if __name__ == "__main__":
    main()
