"""A worker killed mid-fit: the train fails with a clear error and writes no bundle."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path

import pytest
from typer.testing import CliRunner

from retail_forecast.cli import app
from retail_forecast.config import DataConfig, Settings
from retail_forecast.data_processing.dataset import build_dataset
from retail_forecast.data_processing.synthetic import SyntheticConfig, write_dataset
from retail_forecast.distributed.cluster import ClusterError, DaskEngine, open_engine
from retail_forecast.distributed.factories import dask_factories
from retail_forecast.pipeline.fit import train_bundle

SETTINGS = {
    "xgboost": {"rounds": 20_000, "nthread": 1},  # long enough to be killed in the middle
    "lstm": {
        "epochs": 1,
        "windows_per_epoch": 64,
        "batch_size": 64,
        "hidden_size": 4,
        "window": 28,
        "scaler_days": 60,
        "num_threads": 1,
    },
    "backtest": {"folds": 1},
}


def _kill_when_training(engine: DaskEngine, pids: dict[str, int], done: threading.Event) -> None:
    """SIGKILL one worker once a task of XGBoost's training runs on it (60 s at most)."""
    deadline = time.monotonic() + 60
    while not done.is_set() and time.monotonic() < deadline:
        running = engine.client.processing()
        for worker, keys in running.items():
            if any(str(key).startswith("fn-") for key in keys) and worker in pids:
                os.kill(pids[worker], signal.SIGKILL)
                return
        time.sleep(0.05)


def _train_and_kill(out: Path) -> None:
    """Train on the dask engine and SIGKILL a worker mid-fit; print the error it raised."""
    raw = out.parent / "raw"
    write_dataset(raw, SyntheticConfig(n_stores=4, n_families=6, n_days=400, seed=1))
    panel = build_dataset(raw, DataConfig(data_dir=str(raw)), horizon=16)
    with open_engine("dask", n_workers=2) as engine:
        assert engine is not None
        pids = engine.client.run(os.getpid)
        done = threading.Event()
        killer = threading.Thread(target=_kill_when_training, args=(engine, pids, done))
        killer.start()
        try:
            train_bundle(
                panel,
                Settings.model_validate(SETTINGS),
                out_dir=out,
                engine=partial(dask_factories, engine=engine),
            )
        except ClusterError as exc:
            sys.stdout.write(f"CLUSTER_ERROR: {exc}\n")
            sys.stdout.flush()
            raise SystemExit(3) from None
        finally:
            done.set()
            killer.join()


@pytest.mark.slow
def test_killed_worker_fails_the_train_and_writes_no_bundle(tmp_path: Path) -> None:
    """In a child process, so that a crash (not what we want) could not take the test run.

    XGBoost's tracker runs on the scheduler; with a LocalCluster (the scheduler inside the
    command) a vanished worker could abort the whole process (bench/RESULTS.md, scale). The
    engine's local cluster runs the scheduler in a process of its own: the clear error.
    """
    out = tmp_path / "artifacts"
    code = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
        "import test_worker_killed as t; from pathlib import Path; "
        f"t._train_and_kill(Path({str(out)!r}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=540, check=False
    )
    assert done.returncode == 3, (done.returncode, done.stdout[-2000:], done.stderr[-3000:])
    assert not out.exists() or not any(out.iterdir())
    assert "CLUSTER_ERROR: the XGBoost fit failed on the Dask cluster (lost worker" in done.stdout
    assert "nothing was written" in done.stdout


def test_engine_option_is_checked_before_any_work(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["train", "--engine", "spark", "--out", str(tmp_path)])
    assert result.exit_code != 0
    assert "--engine" in result.output
    assert "local, dask" in result.output
    result = CliRunner().invoke(
        app, ["backtest", "--data-dir", str(tmp_path), "--scheduler", "tcp://127.0.0.1:1"]
    )
    assert result.exit_code != 0
    assert "--scheduler: only with --engine dask" in result.output
