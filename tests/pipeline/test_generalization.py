"""bench/generalization.py end to end on one tiny generated shape: the product's real CLI
(`data generate`, then `backtest --json`) in subprocesses, real files in a temporary directory.

It checks the shape of what the bench reports (every model and every baseline, in every fold
and in the markdown), not a score: a tiny panel's accuracy is no promise.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "generalization.py"
MODELS = ("xgboost", "lstm", "hybrid")
BASELINES = ("seasonal_naive", "mean_14", "last_value", "zero")


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_generalization", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_generalization_bench_reports_every_model_and_baseline() -> None:
    bench = _bench()
    size = {"stores": 2, "families": None, "days": 240}
    rows = bench.run_bench(["one-family"], size=size, models=",".join(MODELS), folds=2)

    (row,) = rows
    assert row["shape"] == "one-family"
    assert row["generator"]["family_list"] == ["GROCERY I"]  # the shape really was generated
    assert set(row["names"]) == set(MODELS) | set(BASELINES)
    assert len(row["folds"]) == 2
    for scores in [*row["folds"].values(), row["mean"]]:
        assert set(scores) == set(MODELS) | set(BASELINES)
        assert all(math.isfinite(v) and v >= 0 for v in scores.values())
    assert row["best_model"] in MODELS
    assert row["best_naive"] in BASELINES
    mean = row["mean"]
    assert row["improvement_pct"] == pytest.approx(
        100 * (1 - mean[row["best_model"]] / mean[row["best_naive"]])
    )
    assert mean[row["best_naive"]] == min(mean[name] for name in BASELINES)

    table = bench.report(rows)
    for name in (*MODELS, *BASELINES):
        assert f"| {name} |" in table
    assert "| one-family | " in table
