"""Tree predictors per call on a bundle's booster: NumPy walker, XGBoost, treelite (not a test).

Times one recursion step (one ``TreePredictor.predict`` call) for 1..64 real feature rows with
each predictor behind the seam of ``models/tree_predictor.py``, calls in turn, and checks each
against XGBoost's own ``inplace_predict`` bit for bit: on the bundle's rows, and on the same rows
with 5 % of the values (categorical columns included) missing. Rows: the bundle's history, day 1
of the horizon, every series (so store and family codes are real). ``WALKER_MAX_ROWS`` encodes
the walker/XGBoost crossover. treelite (``pip install treelite``, not a dependency) is measured
two ways: GTIL's ``predict``, and GTIL's per-tree outputs summed in XGBoost's order.

    .venv/bin/python bench/forest.py --artifacts artifacts
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from retail_forecast.artifacts import ModelBundle
from retail_forecast.features.builder import panel_from_frame
from retail_forecast.models.tree_predictor import WALKER_MAX_ROWS, InplacePredictor, TreePredictor
from retail_forecast.models.tree_walker import NumpyTreeWalker
from retail_forecast.models.xgboost import XGBForecaster

ROWS = (1, 2, 4, 8, 16, 32, 48, 64)
F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class GtilPredictor:
    """treelite's GTIL ``predict`` (it sums the trees, then adds ``base_score``)."""

    model: Any

    def predict(self, x: F32) -> F32:
        import treelite

        return np.asarray(treelite.gtil.predict(self.model, x, nthread=1)).reshape(len(x))


@dataclass(frozen=True)
class GtilPerTreePredictor:
    """GTIL's per-tree outputs, summed in float32 from ``base_score`` tree by tree (XGBoost's)."""

    model: Any
    base_score: np.float32

    def predict(self, x: F32) -> F32:
        import treelite

        per_tree = treelite.gtil.predict_per_tree(self.model, x, nthread=1).reshape(len(x), -1)
        start = np.full((len(x), 1), self.base_score, dtype=np.float32)
        total = np.cumsum(np.concatenate([start, per_tree], axis=1), axis=1, dtype=np.float32)
        return np.ascontiguousarray(total[:, -1])


def feature_rows(bundle: ModelBundle, model: XGBForecaster) -> F32:
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


def per_call_ms(chosen: list[TreePredictor], x: F32, reps: int) -> list[float]:
    """Median wall time of ``predict(x)`` per predictor, calls taken in turn (one load for all).

    One warm call each first fills the walker's per-thread categorical rows, as steps 2-16 of a
    request do.
    """
    for predictor in chosen:
        predictor.predict(x)
    times: list[list[float]] = [[] for _ in chosen]
    for _ in range(reps):
        for predictor, samples in zip(chosen, times, strict=True):
            t0 = time.perf_counter()
            predictor.predict(x)
            samples.append(time.perf_counter() - t0)
    return [statistics.median(samples) * 1e3 for samples in times]


def predictors(booster: Any, walker: NumpyTreeWalker) -> dict[str, TreePredictor]:
    found: dict[str, TreePredictor] = {
        "NumPy walker": walker,
        "XGBoost inplace_predict": InplacePredictor(booster),
    }
    try:
        import treelite
    except ImportError:
        print("treelite is not installed (pip install treelite): its columns are left out")
        return found
    t0 = time.perf_counter()
    model = treelite.frontend.from_xgboost(booster)
    print(f"treelite {treelite.__version__}: model imported in {time.perf_counter() - t0:.2f} s")
    found["treelite GTIL predict"] = GtilPredictor(model)
    found["treelite GTIL per tree, XGBoost's sum"] = GtilPerTreePredictor(model, walker.base_score)
    return found


def with_missing(x: F32, rng: np.random.Generator) -> F32:
    out = x.copy()
    out[rng.random(out.shape) < 0.05] = np.nan
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    parser.add_argument("--reps", type=int, default=50)
    args = parser.parse_args()
    bundle = ModelBundle.open_current(args.artifacts)
    model = XGBForecaster.load(bundle.path)
    booster = model.booster_
    booster.set_param({"nthread": 1})  # as served for one series
    t0 = time.perf_counter()
    walker = NumpyTreeWalker.from_booster(booster)
    build_s = time.perf_counter() - t0
    x_all = feature_rows(bundle, model)
    rng = np.random.default_rng(0)
    print(
        f"bundle {bundle.version}: {walker.n_trees} trees, depth {walker.depth}, "
        f"{len(walker.feature):,} nodes, {len(walker.cat_right):,} categorical splits; "
        f"walker built in {build_s:.2f} s; WALKER_MAX_ROWS = {WALKER_MAX_ROWS}"
    )
    chosen = predictors(booster, walker)
    checks = {"rows": x_all, "rows with 5 % missing": with_missing(x_all, rng)}
    for label, x in checks.items():
        expected = booster.inplace_predict(x, validate_features=False)
        for name, predictor in chosen.items():
            got = predictor.predict(x)
            differ = int(np.sum(got != expected))
            print(
                f"{name}, all {len(x)} {label}: bit-identical {differ == 0} "
                f"({differ} differ, max |diff| {float(np.max(np.abs(got - expected))):.3g})"
            )
    print("| rows | " + " | ".join(f"{name} ms/call" for name in chosen) + " |")
    print("|---" * (len(chosen) + 1) + "|")
    for n in ROWS:
        x = x_all[rng.choice(len(x_all), n, replace=False)]
        times = per_call_ms(list(chosen.values()), x, args.reps)
        print(f"| {n} | " + " | ".join(f"{ms:.3f}" for ms in times) + " |")


if __name__ == "__main__":
    main()
