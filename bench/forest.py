"""CompiledForest vs XGBoost ``inplace_predict`` per call, on a bundle's booster (not a test).

Times one recursion step (one call) for 1..64 rows of real feature rows, both ways in the same
run, checks the two agree bit for bit, and reports the crossover that ``FOREST_MAX_ROWS`` in
``models/xgboost.py`` encodes. Feature rows: the bundle's history, day 1 of the horizon, every
series (so store and family codes are real).

    .venv/bin/python bench/forest.py --artifacts artifacts
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

from retail_forecast.artifacts import ModelBundle
from retail_forecast.features.builder import panel_from_frame
from retail_forecast.models.forest import CompiledForest
from retail_forecast.models.xgboost import FOREST_MAX_ROWS, XGBForecaster

ROWS = (1, 2, 4, 8, 16, 32, 48, 64)
F32 = npt.NDArray[np.float32]


def feature_rows(bundle: ModelBundle, model: XGBForecaster) -> npt.NDArray[np.float32]:
    history = bundle.read_parquet("history.parquet")
    panel = panel_from_frame(history)
    builder = model.builder_
    lookback = builder.spec.lookback
    window = np.full((panel.n_series, lookback + 1), np.nan)
    window[:, :lookback] = panel.log_sales[:, -lookback:]
    date = panel.dates[-1] + np.timedelta64(1, "D")
    promo = panel.promo[:, -1]
    return builder.day_features(
        window, day=lookback, date=date, promo=promo, codes=builder.encode(panel.keys)
    )


def per_call_ms(fn: Callable[[F32], object], x: F32, reps: int) -> float:
    """Median wall time of ``fn(x)`` over ``reps`` calls."""
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    parser.add_argument("--reps", type=int, default=50)
    args = parser.parse_args()
    bundle = ModelBundle.open_current(args.artifacts)
    model = XGBForecaster.load(bundle.path)
    booster = model.booster_
    booster.set_param({"nthread": 1})
    t0 = time.perf_counter()
    forest = CompiledForest.from_booster(booster)
    compile_s = time.perf_counter() - t0
    x_all = feature_rows(bundle, model)
    rng = np.random.default_rng(0)
    print(
        f"bundle {bundle.version}: {forest.n_trees} trees, depth {forest.depth}, "
        f"{len(forest.feature):,} nodes, {len(forest.cat_right):,} categorical splits; "
        f"compile {compile_s:.2f} s; FOREST_MAX_ROWS = {FOREST_MAX_ROWS}"
    )
    exact = np.array_equal(
        forest.predict(x_all), booster.inplace_predict(x_all, validate_features=False)
    )
    print(f"all {len(x_all)} rows bit-identical: {exact}")
    print("| rows | CompiledForest ms/call | XGBoost inplace_predict ms/call | ratio |")
    print("|---|---|---|---|")
    for n in ROWS:
        x = x_all[rng.choice(len(x_all), n, replace=False)]
        forest.predict(x)  # warm the per-thread categorical rows, as steps 2-16 of a request do
        f_ms = per_call_ms(forest.predict, x, args.reps)
        x_ms = per_call_ms(
            lambda rows: booster.inplace_predict(rows, validate_features=False), x, args.reps
        )
        print(f"| {n} | {f_ms:.3f} | {x_ms:.3f} | {x_ms / f_ms:.1f}x |")


if __name__ == "__main__":
    main()
