"""LSTM training on CUDA vs CPU on the same machine (not a test; needs a GPU to say anything).

Trains ``LSTMForecaster`` with the shipped default configuration on a synthetic panel shaped
like the real data (1,782 series; weekly pattern, promotions, noise), once on the GPU and once
on the CPU with the default 1 thread, and reports seconds per epoch and per 1,000 training
windows for both, the validation RMSLE each reached, and the device the model says it trained
on. The CPU run is shorter (``--cpu-windows`` per epoch) and scaled per window. The real data
is not used: the GPU machine has no copy of it.

    python bench/lstm_cuda.py --out lstm_cuda.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from retail_forecast.config import LSTMConfig
from retail_forecast.models.lstm import LSTMForecaster
from retail_forecast.schema import CANONICAL_COLUMNS, DATE, FAMILY, IS_CLOSED, PROMO, STORE, TARGET


def synthetic_panel(n_stores: int, n_families: int, n_days: int, seed: int = 0) -> pd.DataFrame:
    """A complete canonical frame: level x weekly pattern x promotion lift, Poisson noise."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range(end="2017-08-15", periods=n_days, freq="D")
    n_series = n_stores * n_families
    level = rng.lognormal(3.0, 1.5, n_series)[:, None]
    weekly = 1.0 + 0.3 * np.sin(
        2 * np.pi * (dates.dayofweek.to_numpy() + rng.integers(0, 7, (n_series, 1))) / 7
    )
    promo = rng.poisson(2.0, (n_series, n_days)) * (rng.random((n_series, n_days)) < 0.3)
    closed = np.broadcast_to((dates.month == 12) & (dates.day == 25), (n_series, n_days))
    sales = rng.poisson(level * weekly * (1 + 0.1 * promo)).astype(np.float64)
    sales[closed] = 0.0
    promo[closed] = 0
    stores = np.repeat(np.arange(1, n_stores + 1), n_families)
    families = np.tile([f"FAMILY {k:02d}" for k in range(n_families)], n_stores)
    frame = pd.DataFrame(
        {
            DATE: np.tile(dates.to_numpy(), n_series),
            STORE: np.repeat(stores, n_days).astype(np.int64),
            FAMILY: pd.Categorical(np.repeat(families, n_days)),
            TARGET: sales.reshape(-1),
            PROMO: promo.reshape(-1).astype(np.int64),
            IS_CLOSED: closed.reshape(-1),
        }
    )
    return frame[list(CANONICAL_COLUMNS)]


def timed_fit(history: pd.DataFrame, config: LSTMConfig) -> dict[str, Any]:
    started = time.perf_counter()
    model = LSTMForecaster(config, horizon=16).fit(history)  # Favorita's horizon
    seconds = time.perf_counter() - started
    windows = config.epochs * config.windows_per_epoch
    return {
        "device": model.trained_on_["device"],
        "epochs": config.epochs,
        "windows_per_epoch": config.windows_per_epoch,
        "seconds": round(seconds, 2),
        "seconds_per_epoch": round(seconds / config.epochs, 2),
        "seconds_per_1000_windows": round(1000 * seconds / windows, 4),
        "val_rmsle": round(model.val_rmsle_, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=54)
    parser.add_argument("--families", type=int, default=33)
    parser.add_argument("--days", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=12, help="GPU run (the default config)")
    parser.add_argument("--cpu-epochs", type=int, default=1)
    parser.add_argument("--cpu-windows", type=int, default=16384)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this bench compares a GPU with the CPU")
    history = synthetic_panel(args.stores, args.families, args.days)
    base = LSTMConfig(epochs=args.epochs, patience=args.epochs)
    report: dict[str, Any] = {
        "command": "python bench/lstm_cuda.py",
        "gpu": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "series": args.stores * args.families,
        "days": args.days,
        "cuda": timed_fit(history, base.model_copy(update={"device": "cuda"})),
        "cpu": timed_fit(
            history,
            base.model_copy(
                update={
                    "device": "cpu",
                    "epochs": args.cpu_epochs,
                    "windows_per_epoch": args.cpu_windows,
                }
            ),
        ),
    }
    report["speedup_per_window"] = round(
        report["cpu"]["seconds_per_1000_windows"] / report["cuda"]["seconds_per_1000_windows"], 1
    )
    text = json.dumps(report, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
