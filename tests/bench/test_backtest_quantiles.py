"""bench/backtest_quantiles.py on a tiny generated panel: real `data generate` files, the
product's backtest and held-out quantiles, and (when mlforecast is installed) the conformal peer.

It checks what the bench reports and the peer's quantiles' rules (sorted, >= 0, the median is
the point, 0 for a dead series), not a score: a tiny panel's accuracy is no promise.
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "backtest_quantiles.py"
CLI = ("-c", "import sys; from retail_forecast.cli import main; sys.exit(main())")
NO_PEER = "mlforecast/lightgbm not installed (the `bench` extra): the peer part is not tested"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_backtest_quantiles", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _need_peer() -> None:
    for name in ("mlforecast", "lightgbm"):
        if importlib.util.find_spec(name) is None:
            pytest.skip(NO_PEER)


@pytest.fixture(scope="module")
def panel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A closed-sundays panel (2 stores x 3 families x 240 days) with its own profile."""
    out = tmp_path_factory.mktemp("quantiles") / "closed-sundays"
    args = ["data", "generate", "--shape", "closed-sundays", "--out", str(out)]
    args += ["--stores", "2", "--families", "3", "--days", "240", "--seed", "0"]
    subprocess.run([sys.executable, *CLI, *args], check=True, capture_output=True)
    return out


@pytest.fixture
def quick_xgboost(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fixed, small round count: the bench's plumbing is under test, not the model."""
    monkeypatch.setenv("RF_XGBOOST__ROUNDS", "20")


def _run(panel: Path, tmp_path: Path, *extra: str) -> dict[str, Any]:
    out = tmp_path / "report.json"
    argv = ["--data-dir", str(panel), "--models", "xgboost", "--folds", "2", "--out", str(out)]
    bench = _bench()
    assert bench.main([*argv, *extra]) == 0
    report: dict[str, Any] = json.loads(out.read_text())
    return report


def _check_side(report: dict[str, Any], folds: list[str]) -> None:
    assert list(report["per_fold"]) == folds
    for scores in [*report["per_fold"].values(), report]:
        assert set(scores["coverage"]) == {"0.5", "0.8", "0.95"}
        assert all(0.0 <= v <= 1.0 for v in scores["coverage"].values())
        assert scores["wql"] is not None
        assert math.isfinite(scores["wql"])
        assert scores["wql"] > 0
    assert set(report["rmsle"]) == set(folds)


@pytest.mark.usefixtures("quick_xgboost")
def test_bench_without_peer_reports_our_heldout_quantiles(
    panel: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = _run(panel, tmp_path, "--skip-peer")
    folds = report["folds"]
    assert len(folds) == 2
    assert report["served_column"] == "xgboost"
    assert report["peer"] is None
    _check_side(report["ours"], folds)
    # the point RMSLE is the backtest's own for the served column
    for fold in report["backtest"]["folds"]:
        assert report["ours"]["rmsle"][fold["start"]] == pytest.approx(fold["rmsle"]["xgboost"])
    table = capsys.readouterr().out
    assert "| fold | ours WQL | ours 50% | ours 80% | ours 95% | ours RMSLE |" in table
    assert all(f"| {name} |" in table for name in folds)
    assert "| mean |" in table


@pytest.mark.usefixtures("quick_xgboost")
def test_bench_with_a_tiny_peer_scores_both_on_the_same_folds(
    panel: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _need_peer()
    report = _run(panel, tmp_path, "--peer-trees", "10", "--peer-windows", "2")
    peer = report["peer"]
    assert peer["name"] == "mlforecast_conformal"
    assert peer["windows"] == 2
    _check_side(report["ours"], report["folds"])
    _check_side(peer, report["folds"])
    assert peer["crossed_rows"].keys() == set(report["folds"])
    assert peer["rows"] == report["ours"]["rows"]  # the same open rows
    assert "| fold | ours WQL | peer WQL | ours 50% | peer 50% |" in capsys.readouterr().out


def test_peer_quantiles_are_sorted_nonnegative_and_zero_for_a_dead_series(panel: Path) -> None:
    _need_peer()
    from retail_forecast.schema import DATE, FAMILY, STORE, TARGET
    from retail_forecast.training.backtest import run_backtest
    from retail_forecast.training.quantile_scores import REPORT_LEVELS

    bench = _bench()
    settings, built = bench.load(panel, None)
    sales = built.sales.copy()
    store, family = sales[STORE].iloc[0], sales[FAMILY].iloc[0]
    dead = (sales[STORE] == store) & (sales[FAMILY] == family)
    sales.loc[dead & (sales[DATE] > sales[DATE].max() - pd.Timedelta(days=60)), TARGET] = 0.0
    result = run_backtest(sales, {}, folds=2, horizon=16)  # the baselines only: fast

    def make() -> Any:
        return bench.make_peer(settings, built, windows=2, trees=10)

    point, quantiles, info = bench.peer_backtest(sales, result, make)
    matrix = np.column_stack([quantiles[lv] for lv in REPORT_LEVELS])
    assert (matrix >= 0).all()
    assert (np.diff(matrix, axis=1) >= 0).all()
    np.testing.assert_array_equal(quantiles[0.5], point)  # the median is the point forecast
    rows = result.predictions
    is_dead = ((rows[STORE] == store) & (rows[FAMILY] == family)).to_numpy()
    assert (matrix[is_dead] == 0).all()
    assert (point[is_dead] == 0).all()
    assert (matrix[~is_dead & rows["open"].to_numpy()].max(axis=1) > 0).all()
    assert set(info["seconds"]) == {f.name for f in result.folds}


def test_interval_of_each_level() -> None:
    bench = _bench()
    assert [bench.central_interval(lv) for lv in (0.005, 0.025, 0.1, 0.165, 0.25)] == [
        99,
        95,
        80,
        67,
        50,
    ]
    assert bench._interval_column(0.835) == "m-hi-67"
    assert bench._interval_column(0.5) == "m"
