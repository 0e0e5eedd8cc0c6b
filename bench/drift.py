"""Monitoring on the real Favorita data: earthquake drift, drift-check speed, production replay.

Usage:
    .venv/bin/python bench/drift.py --data-dir ../shared/data/favorita-store-sales \
        --out bench/drift.json [--report /tmp/monitoring_report.html]

1. Drift: reference = 2016-Q1 features; windows = the 2016-04-16..05-15 earthquake weeks, plus
   controls (a window inside the reference and the 30 days just before the quake).
2. Speed: check_drift over the full panel's features (16 days and 3 months of all 1,782
   series), median of 5 runs; reference build and parse times.
3. Replay: 2017-07-31..08-15 as "production" for a model fitted up to 2017-07-30 (the
   mean-of-14-days baseline stands in for the trained bundle: same interface, no training
   minutes): one 16-day forecast logged, actuals ingested day by day, accuracy per horizon day
   compared with the backtest's F1 numbers from run_backtest on the same fold; then a
   degraded version (forecasts x2) must raise the alert.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from favorita_frame import load_canonical

from retail_forecast.config import MonitoringConfig
from retail_forecast.models.baselines import BaselineForecaster
from retail_forecast.monitoring.drift import DriftReport, check_drift
from retail_forecast.monitoring.html_report import write_report
from retail_forecast.monitoring.prediction_log import PredictionLog
from retail_forecast.monitoring.reference import ReferenceProfile, build_reference, window_features
from retail_forecast.schema import DATE, FAMILY, PROMO, STORE
from retail_forecast.training.backtest import run_backtest

logger = logging.getLogger("bench")
CONFIG = MonitoringConfig()


def _timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - started


def _summary(report: DriftReport) -> dict[str, Any]:
    return {
        "status": report.status,
        "window": report.window,
        "rows": report.current_rows,
        "drifted_features": report.drifted_features,
        "drifted_checks": report.drifted_checks,
        "features": {
            f.feature: {
                "test": f.test,
                "statistic": f.statistic,
                "status": f.status,
                "psi": f.stats.get("psi"),
                "ks": f.stats.get("ks"),
            }
            for f in report.features
        },
        "checks": {
            c.name: {
                "statistic": c.statistic,
                "reference": c.reference,
                "current": c.current,
                "status": c.status,
                "details": c.details,
            }
            for c in report.checks
        },
    }


def bench_drift(sales: pd.DataFrame) -> dict[str, Any]:
    ref_feats, t_feats = _timed(window_features, sales, start="2016-01-01", end="2016-03-31")
    reference, t_ref = _timed(build_reference, ref_feats)
    profile, t_parse = _timed(ReferenceProfile.from_frame, reference)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "reference.parquet"
        reference.to_parquet(path, index=False)
        size = path.stat().st_size
    out: dict[str, Any] = {
        "reference": {
            "rows_profiled": len(ref_feats),
            "profile_rows": len(reference),
            "parquet_bytes": size,
            "features_s": t_feats,
            "build_s": t_ref,
            "parse_s": t_parse,
        },
        "windows": {},
    }
    windows = {
        "inside_reference_2016-02-15..03-15": ("2016-02-15", "2016-03-15"),
        "before_quake_2016-03-16..04-15": ("2016-03-16", "2016-04-15"),
        "earthquake_2016-04-16..05-15": ("2016-04-16", "2016-05-15"),
        "after_2016-06-01..06-30": ("2016-06-01", "2016-06-30"),
    }
    for name, (start, end) in windows.items():
        report = check_drift(profile, window_features(sales, start=start, end=end), config=CONFIG)
        out["windows"][name] = _summary(report)
        print(
            f"{name}: {report.status} features={report.drifted_features} "
            f"checks={report.drifted_checks}"
        )
    return out


def bench_speed(sales: pd.DataFrame, *, repeats: int = 5) -> dict[str, Any]:
    last = sales[DATE].max()
    ref = ReferenceProfile.from_frame(
        build_reference(window_features(sales, start=last - pd.Timedelta(days=180), end=last))
    )
    out: dict[str, Any] = {}
    for days in (16, 91):
        start = last - pd.Timedelta(days=days - 1)
        current, t_feats = _timed(window_features, sales, start=start, end=last)
        runs = [_timed(check_drift, ref, current, config=CONFIG)[1] for _ in range(repeats)]
        raw = build_reference(
            window_features(
                sales, start=start - pd.Timedelta(days=180), end=start - pd.Timedelta(days=1)
            )
        )
        from_frame = [_timed(check_drift, raw, current, config=CONFIG)[1] for _ in range(repeats)]
        out[f"{days}_days"] = {
            "rows": len(current),
            "features_s": t_feats,
            "check_drift_median_s": statistics.median(runs),
            "check_drift_max_s": max(runs),
            "check_drift_incl_profile_parse_median_s": statistics.median(from_frame),
        }
        print(f"speed {days} days: {out[f'{days}_days']}")
    return out


def _future(sales: pd.DataFrame, start: str, end: str) -> pd.DataFrame:
    window = sales[(sales[DATE] >= start) & (sales[DATE] <= end)]
    return window[[DATE, STORE, FAMILY, PROMO]].reset_index(drop=True)


def bench_replay(sales: pd.DataFrame, db: Path, report_path: Path | None) -> dict[str, Any]:
    origin = pd.Timestamp("2017-07-30")
    history = sales[sales[DATE] <= origin]
    backtest = run_backtest(sales, {}, folds=1, horizon=16, step=16).to_dict()
    model = BaselineForecaster("mean", window=14).fit(history)
    future = _future(sales, "2017-07-31", "2017-08-15")
    forecast = model.predict(history, future)
    forecast["horizon_day"] = (forecast[DATE] - origin).dt.days
    log = PredictionLog(db)
    logged, t_log = _timed(
        log.log_predictions, forecast, model_version="replay-mean14", model="mean_14"
    )
    ingest_s, statuses = [], []
    actuals = sales[(sales[DATE] > origin)][[DATE, STORE, FAMILY, "sales"]]
    for day in pd.date_range("2017-07-31", "2017-08-15"):
        _, seconds = _timed(log.ingest_actuals, actuals[actuals[DATE] == day])
        ingest_s.append(seconds)
        status = log.status(backtest, model_version="replay-mean14", window_days=7)
        statuses.append((str(day.date()), status.status, status.rmsle, status.baseline_rmsle))
    again, t_again = _timed(log.ingest_actuals, actuals)  # the whole window re-sent
    per_day, t_acc = _timed(log.accuracy, "horizon_day", model_version="replay-mean14")
    expected = {int(h): v["mean_14"] for h, v in backtest["per_horizon_day"].items()}
    gap = max(abs(r.rmsle - expected[int(r.horizon_day)]) for r in per_day.itertuples())
    bad = forecast.assign(sales=forecast["sales"] * 2.0)
    log.log_predictions(bad, model_version="replay-degraded", model="mean_14")
    degraded = log.status(backtest, model_version="replay-degraded", window_days=7)
    out = {
        "logged": logged,
        "log_predictions_s": t_log,
        "rows_logged": len(forecast),
        "ingest_per_day_median_s": statistics.median(ingest_s),
        "ingest_per_day_max_s": max(ingest_s),
        "reingest_all_s": t_again,
        "reingest_unchanged": again.unchanged,
        "accuracy_query_s": t_acc,
        "per_horizon_day": {int(r.horizon_day): r.rmsle for r in per_day.itertuples()},
        "backtest_per_horizon_day": expected,
        "max_abs_gap_vs_backtest": gap,
        "backtest_mean": backtest["mean"]["mean_14"],
        "statuses": statuses,
        "final_status": status.to_dict(),
        "degraded_status": degraded.to_dict(),
    }
    print(
        f"replay: gap vs backtest {gap:.2e}; final {status.status} {status.message}; "
        f"degraded {degraded.status} {degraded.message}"
    )
    if report_path is not None:
        drift = check_drift(
            build_reference(window_features(sales, start="2017-04-01", end="2017-07-30")),
            window_features(sales, start="2017-07-31", end="2017-08-15"),
            config=CONFIG,
        )
        write_report(
            report_path,
            drift=drift,
            accuracy=log.accuracy([DATE, FAMILY], model_version="replay-mean14"),
            worst_series=log.worst_series(n=3, model_version="replay-mean14"),
            status=status,
        )
        out["report"] = {
            "path": str(report_path),
            "bytes": report_path.stat().st_size,
            "drift": _summary(drift),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("bench/drift.json"))
    parser.add_argument("--report", type=Path, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    sales, t_load = _timed(load_canonical, args.data_dir)
    print(f"loaded {len(sales):,} rows in {t_load:.1f}s")
    results: dict[str, Any] = {"load_s": t_load, "drift": bench_drift(sales)}
    results["speed"] = bench_speed(sales)
    with tempfile.TemporaryDirectory() as tmp:
        results["replay"] = bench_replay(sales, Path(tmp) / "monitoring.sqlite", args.report)
    args.out.write_text(json.dumps(results, indent=2, default=_json_default) + "\n")
    print(f"written {args.out}")


def _json_default(obj: object) -> object:
    if isinstance(obj, np.generic):
        return obj.item()
    return str(obj)


if __name__ == "__main__":
    main()
