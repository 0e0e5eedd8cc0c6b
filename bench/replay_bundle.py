"""Production replay of 2017-07-31..08-15 against a REAL trained hybrid bundle (issue 7).

Not a test. Steps:

1. build the canonical frame of the real data, keep sales up to 2017-07-30 and train a real
   hybrid bundle with ``train_bundle`` (reduced configuration, see ``reduced_settings``);
2. "backtest F1" of that exact model: the fitted ``TrainResult.forecaster`` forecasts
   2017-07-31..08-15 in process from the history up to 07-30; RMSLE per horizon day vs the
   real sales (also from the bundle's 120-day history tail, which is what the service holds);
3. replay production through the real app in process (FastAPI TestClient, LocalPredictor on the
   tmp bundle): one POST /api/v1/predict of all 1,782 series x 16 days, then the real actuals
   POSTed day by day with GET /api/v1/monitoring/status after each day, GET /monitoring/drift
   once; the accuracy per horizon day read from the prediction log is compared with step 2.

    .venv/bin/python bench/replay_bundle.py [--data-dir ../shared/data/favorita-store-sales]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from fastapi.testclient import TestClient

from retail_forecast.app import create_app
from retail_forecast.artifacts import ModelBundle
from retail_forecast.bundle_contents import HISTORY_DAYS
from retail_forecast.config import (
    ApiConfig,
    BacktestConfig,
    DataConfig,
    LSTMConfig,
    MonitoringConfig,
    Settings,
    XGBoostConfig,
)
from retail_forecast.data_processing.dataset import build_dataset
from retail_forecast.models.hybrid import HybridForecaster
from retail_forecast.monitoring.prediction_log import PredictionLog
from retail_forecast.pipeline.fit import train_bundle
from retail_forecast.schema import DATE, FAMILY, PROMO, STORE, TARGET

DEFAULT_DATA = Path("../shared/data/favorita-store-sales")
ORIGIN = pd.Timestamp("2017-07-30")
LAST = ORIGIN + pd.Timedelta(days=16)
JSON_HEADERS = {"Content-Type": "application/json"}

REDUCED = {
    "backtest": {"folds": 2},
    "xgboost": {
        "n_estimators": 300,
        "learning_rate": 0.1,
        "nthread": 2,
        "train_start": "2016-06-01",
    },
    "lstm": {"epochs": 2, "windows_per_epoch": 16384, "num_threads": 1},
}


def reduced_settings(root: Path) -> Settings:
    """The reduced training configuration plus tmp artifacts / history / monitoring paths."""
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        artifacts_dir=root / "artifacts",
        backtest=BacktestConfig(**REDUCED["backtest"]),
        xgboost=XGBoostConfig(**REDUCED["xgboost"]),
        lstm=LSTMConfig(**REDUCED["lstm"]),
        api=ApiConfig(history_dir=root / "history", request_timeout_s=120.0),
        monitoring=MonitoringConfig(db_path=root / "monitoring.sqlite"),
    )


def per_horizon_rmsle(pred: np.ndarray, actual: np.ndarray, horizon: np.ndarray) -> pd.Series:
    sq = (np.log1p(pred) - np.log1p(actual)) ** 2
    return pd.Series(sq).groupby(horizon).mean().pow(0.5)


def in_process_f1(forecaster: Any, history: pd.DataFrame, window: pd.DataFrame) -> pd.Series:
    future = window[[DATE, STORE, FAMILY, PROMO]].reset_index(drop=True)
    out = forecaster.predict(history, future)
    horizon = (window[DATE] - ORIGIN).dt.days.to_numpy()
    return per_horizon_rmsle(
        out[TARGET].to_numpy(np.float64), window[TARGET].to_numpy(np.float64), horizon
    )


def rows_body(frame: pd.DataFrame, *, with_sales: bool) -> bytes:
    dates = frame[DATE].dt.strftime("%Y-%m-%d").tolist()
    stores = frame[STORE].astype(int).tolist()
    families = frame[FAMILY].astype(str).tolist()
    promos = frame[PROMO].astype(int).tolist()
    rows: list[dict[str, Any]] = [
        {"date": d, "store_nbr": s, "family": f, "onpromotion": p}
        for d, s, f, p in zip(dates, stores, families, promos, strict=True)
    ]
    if with_sales:
        for row, sales in zip(rows, frame[TARGET].astype(float).tolist(), strict=True):
            row["sales"] = sales
    return json.dumps({"rows": rows}).encode()


def timed(call: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    response = call()
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text[:500]
    return response.json(), elapsed


def replay(settings: Settings, window: pd.DataFrame) -> dict[str, Any]:
    out: dict[str, Any] = {}
    app = create_app(settings)
    with TestClient(app) as client:
        started = time.perf_counter()
        while client.get("/ready").status_code != 200:
            time.sleep(0.1)
        out["ready_s"] = round(time.perf_counter() - started, 2)
        state = client.app.state.service  # type: ignore[attr-defined]
        body = rows_body(window, with_sales=False)
        served, predict_s = timed(
            lambda: client.post("/api/v1/predict", content=body, headers=JSON_HEADERS)
        )
        started = time.perf_counter()
        state.recorder.flush(120)
        out["predict"] = {
            "rows": len(served["predictions"]),
            "body_mb": round(len(body) / 1e6, 2),
            "request_s": round(predict_s, 2),
            "log_flush_s": round(time.perf_counter() - started, 2),
            "model_version": served["model_version"],
            "models": pd.Series([p["model"] for p in served["predictions"]])
            .value_counts()
            .to_dict(),
        }
        print(f"predict: {out['predict']}", flush=True)
        days = []
        for day, rows in window.groupby(DATE):
            ack, post_s = timed(
                lambda rows=rows: client.post(
                    "/api/v1/actuals",
                    content=rows_body(rows, with_sales=True),
                    headers=JSON_HEADERS,
                )
            )
            state.recorder.flush(120)
            status, status_s = timed(lambda: client.get("/api/v1/monitoring/status"))
            entry = {
                "day": f"{day:%Y-%m-%d}",
                "actuals_post_s": round(post_s, 3),
                "appended": ack["appended"],
                "history_end": ack["history_end"],
                "status_get_s": round(status_s, 3),
                "status": status["status"],
                "alert": status["alert"],
                "n": status["n"],
                "rmsle": status["rmsle"],
                "baseline_rmsle": status["baseline_rmsle"],
                "ratio": status["ratio"],
            }
            days.append(entry)
            print(f"  {entry}", flush=True)
        out["days"] = days
        out["final_status_by_horizon_day"] = status["by_horizon_day"]
        drift, drift_s = timed(lambda: client.get("/api/v1/monitoring/drift"))
        out["drift"] = {
            "get_s": round(drift_s, 2),
            "status": drift["status"],
            "window": drift["window"],
            "reference_window": drift["reference_window"],
            "current_rows": drift["current_rows"],
            "drifted_features": drift["drifted_features"],
            "drifted_checks": drift["drifted_checks"],
        }
        print(f"drift: {out['drift']}", flush=True)
        state.recorder.flush(120)
        # served responses x real sales, as a third cross-check of the log
        pred = pd.DataFrame(served["predictions"])
        pred[DATE] = pd.to_datetime(pred[DATE])
        joined = pred.merge(
            window[[DATE, STORE, FAMILY, TARGET]].astype({FAMILY: str}),
            on=[DATE, STORE, FAMILY],
            suffixes=("_pred", ""),
        )
        out["responses_rmsle"] = per_horizon_rmsle(
            joined["sales_pred"].to_numpy(np.float64),
            joined[TARGET].to_numpy(np.float64),
            (joined[DATE] - ORIGIN).dt.days.to_numpy(),
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=Path("bench/replay_bundle.json"))
    parser.add_argument("--root", type=Path, default=Path(tempfile.gettempdir()) / "replay_bundle")
    parser.add_argument(
        "--reuse", action="store_true", help="reuse the bundle in --root (skip training)"
    )
    args = parser.parse_args()
    result: dict[str, Any] = {
        "date": "2026-11-26",
        "machine": f"2-core shared dev VM (busy), {platform.machine()}",
        "reduced_config": REDUCED,
    }
    started = time.perf_counter()
    built = build_dataset(args.data_dir, DataConfig())
    sales = built.sales
    result["build_dataset_s"] = round(time.perf_counter() - started, 1)
    window = sales[(sales[DATE] > ORIGIN) & (sales[DATE] <= LAST)]
    window = window.sort_values([DATE, STORE, FAMILY], ignore_index=True)
    history = sales[sales[DATE] <= ORIGIN].reset_index(drop=True)
    dataset = dataclasses.replace(built, sales=history)
    print(
        f"frame {len(sales):,} rows; history {history[DATE].min():%Y-%m-%d}..{ORIGIN:%Y-%m-%d}"
        f" ({len(history):,}); window {len(window):,} rows ({result['build_dataset_s']} s)",
        flush=True,
    )
    root = args.root
    if not args.reuse:
        shutil.rmtree(root, ignore_errors=True)
    shutil.rmtree(root / "history", ignore_errors=True)  # a fresh service history store
    for name in ("monitoring.sqlite", "monitoring.sqlite-wal", "monitoring.sqlite-shm"):
        (root / name).unlink(missing_ok=True)
    root.mkdir(parents=True, exist_ok=True)
    settings = reduced_settings(root)
    if args.reuse:
        bundle = ModelBundle.open_current(settings.artifacts_dir)
        forecaster = HybridForecaster.load(bundle.path, dict(bundle.manifest.metadata))
        version, path = bundle.version, bundle.path
        seconds = bundle.manifest.metadata.get("train_seconds")
        weights = bundle.manifest.metadata["blend_weights"]
        result["train_s"] = None
    else:
        started = time.perf_counter()
        trained = train_bundle(dataset, settings, out_dir=settings.artifacts_dir)
        result["train_s"] = round(time.perf_counter() - started, 1)
        forecaster, version, path = trained.forecaster, trained.version, trained.path
        seconds, weights = trained.seconds, trained.weights.to_dict()
    metrics = json.loads((path / "metrics.json").read_text())
    result["bundle"] = {
        "version": version,
        "seconds": seconds,
        "blend_global_xgboost_weight": weights.get("global_weight"),
        "blend_families_with_own_weight": len(weights.get("per_family", {})),
        "backtest_folds": metrics["folds"],
        "backtest_mean": metrics["mean"],
        "backtest_per_horizon_day_hybrid": {
            h: v.get("hybrid") for h, v in metrics["per_horizon_day"].items()
        },
    }
    print(f"trained in {result['train_s']} s: {result['bundle']}", flush=True)

    started = time.perf_counter()
    f1_full = in_process_f1(forecaster, history, window)
    tail = history[history[DATE] > ORIGIN - pd.Timedelta(days=HISTORY_DAYS)]
    f1_tail = in_process_f1(forecaster, tail.reset_index(drop=True), window)
    result["f1_in_process_s"] = round(time.perf_counter() - started, 1)

    started = time.perf_counter()
    served = replay(settings, window)
    result["replay_s"] = round(time.perf_counter() - started, 1)
    log = PredictionLog(settings.monitoring.db_path)
    acc = log.accuracy(by="horizon_day").set_index("horizon_day")
    responses = served.pop("responses_rmsle")
    result["replay"] = served

    table = []
    for h in range(1, 17):
        table.append(
            {
                "horizon_day": h,
                "log_rmsle": float(acc.loc[h, "rmsle"]),
                "log_n": int(acc.loc[h, "n"]),
                "f1_in_process": float(f1_full[h]),
                "f1_in_process_tail120": float(f1_tail[h]),
                "responses_rmsle": float(responses[h]),
                "bundle_backtest_hybrid": result["bundle"]["backtest_per_horizon_day_hybrid"].get(
                    str(h)
                ),
            }
        )
    gaps = {
        "log_vs_f1": max(abs(r["log_rmsle"] - r["f1_in_process"]) for r in table),
        "log_vs_f1_tail120": max(abs(r["log_rmsle"] - r["f1_in_process_tail120"]) for r in table),
        "log_vs_responses": max(abs(r["log_rmsle"] - r["responses_rmsle"]) for r in table),
    }
    sq_log = (acc["rmsle"] ** 2 * acc["n"]).sum() / acc["n"].sum()
    result["per_horizon_day"] = table
    result["max_abs_gap"] = gaps
    result["window_rmsle_log"] = float(np.sqrt(sq_log))
    result["window_rmsle_f1"] = float(np.sqrt((f1_full**2).mean()))
    args.out.write_text(json.dumps(result, indent=1, default=str) + "\n")

    print("\nday  log_rmsle  F1_in_process  F1_tail120  bundle_backtest(hybrid, 2 folds)")
    for r in table:
        bt = r["bundle_backtest_hybrid"]
        print(
            f"{r['horizon_day']:>3}  {r['log_rmsle']:.4f}     {r['f1_in_process']:.4f}"
            f"         {r['f1_in_process_tail120']:.4f}      {bt if bt is None else f'{bt:.4f}'}"
        )
    print(f"max |gap|: {gaps}")
    print(f"16-day RMSLE: log {result['window_rmsle_log']:.4f}, F1 {result['window_rmsle_f1']:.4f}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
