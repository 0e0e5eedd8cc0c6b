"""API layer cost on the real Favorita domain: parse + validate + render around a model call.

Not a test. Builds the serving domain (54 stores x 33 families) and a 35-day history from the
last real train parts, serves it with a vectorized seasonal-naive predictor (season 7), and
times the predict service's ``answer_predict`` (what POST /api/v1/predict runs in its pool) for
one series x 16 days and for all 1,782 series x 16 days (28,512 rows), splitting model time
from API time.

    .venv/bin/python bench/api_overhead.py [--data-dir ../shared/data/favorita-store-sales]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from retail_forecast.api.predict_service import answer_predict
from retail_forecast.inference.predictor import ServingDomain

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared/data/favorita-store-sales"


class NaivePredictor:
    """Seasonal naive (season 7) over real history, vectorized, recursive past day 7."""

    def __init__(self, history: pd.DataFrame) -> None:
        end = history["date"].max()
        last7 = history[history["date"] > end - pd.Timedelta(days=7)]
        self.week = last7.set_index(["store_nbr", "family", "date"])["sales"]
        self.end = end.date()
        self.stores = tuple(sorted(int(s) for s in history["store_nbr"].unique()))
        self.families = tuple(sorted(str(f) for f in history["family"].unique()))
        self.model_time = 0.0

    @property
    def model_version(self) -> str:
        return "bench-naive"

    @property
    def domain(self) -> ServingDomain:
        return ServingDomain(self.stores, self.families, self.end, 16, 7410)

    def predict(self, rows: pd.DataFrame) -> pd.DataFrame:
        started = time.perf_counter()
        lag = (rows["date"] - pd.Timestamp(self.end)).dt.days.to_numpy()
        source = pd.Timestamp(self.end) + pd.to_timedelta((lag - 1) % 7 + 1 - 7, unit="D")
        keys = pd.MultiIndex.from_arrays(
            [rows["store_nbr"].to_numpy(), rows["family"].astype(str).to_numpy(), source]
        )
        base = self.week.reindex(keys).to_numpy(dtype="float64")
        out = rows.copy()
        out["sales"] = np.nan_to_num(base) * (1 + 0.05 * rows["onpromotion"].to_numpy())
        out["model"] = "hybrid"
        self.model_time += time.perf_counter() - started
        return out

    def append_actuals(self, rows: pd.DataFrame) -> int:
        return 0

    def describe(self) -> dict[str, Any]:
        return {}


def load_history(data_dir: Path, days: int = 35) -> pd.DataFrame:
    parts = [data_dir / "train_parts" / f"df_train_part_{i}.parquet" for i in (28, 29, 30)]
    raw = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    raw["date"] = pd.to_datetime(raw["date"])
    return raw[raw["date"] > raw["date"].max() - pd.Timedelta(days=days)]


def body_for(
    predictor: NaivePredictor, stores: tuple[int, ...], families: tuple[str, ...]
) -> bytes:
    rows = [
        {
            "id": i,
            "date": (predictor.end + dt.timedelta(days=k)).isoformat(),
            "store_nbr": s,
            "family": f,
            "onpromotion": (s + k) % 4,
        }
        for i, (s, f, k) in enumerate(
            (s, f, k) for s in stores for f in families for k in range(1, 17)
        )
    ]
    return json.dumps({"rows": rows}).encode()


def timed(predictor: NaivePredictor, body: bytes, reps: int) -> tuple[list[float], list[float]]:
    totals, models = [], []
    for _ in range(reps):
        predictor.model_time = 0.0
        started = time.perf_counter()
        answer_predict(body, predictor=predictor, max_rows=50_000)  # type: ignore[arg-type]
        totals.append(time.perf_counter() - started)
        models.append(predictor.model_time)
    return totals, models


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    predictor = NaivePredictor(load_history(args.data_dir))
    print(
        f"domain: {len(predictor.stores)} stores x {len(predictor.families)} families, "
        f"history_end {predictor.end}"
    )
    one = body_for(predictor, (predictor.stores[0],), (predictor.families[0],))
    full = body_for(predictor, predictor.stores, predictor.families)
    answer = json.loads(answer_predict(full, predictor=predictor, max_rows=50_000))  # type: ignore[arg-type]
    assert len(answer["predictions"]) == 28_512
    for name, body, reps in (("one series x 16 days", one, 300), ("1,782 series x 16", full, 7)):
        totals, models = timed(predictor, body, reps)
        pct = statistics.quantiles(totals, n=100) if reps >= 100 else None
        mean_total, mean_model = statistics.fmean(totals), statistics.fmean(models)
        tail = f"p99 {pct[98] * 1e3:.2f} ms" if pct else f"max {max(totals) * 1e3:.1f} ms"
        print(
            f"{name} ({reps} reps): body {len(body):,} B; total p50 "
            f"{statistics.median(totals) * 1e3:.2f} ms, {tail}; mean {mean_total * 1e3:.2f} ms "
            f"= model {mean_model * 1e3:.2f} ms "
            f"+ API layer {(mean_total - mean_model) * 1e3:.2f} ms"
        )


if __name__ == "__main__":
    main()
