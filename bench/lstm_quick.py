"""LSTM alone vs the mean-14 baseline on the 4 backtest folds of the real Favorita data.

Usage:
    .venv/bin/python bench/lstm_quick.py [--folds 2017-07-31,...] [--set epochs=4 ...]
        [--data-dir ../shared/data/favorita-store-sales] [--cache FILE.parquet]

Each fold trains on the canonical frame strictly before the window start and forecasts the
16 days of the window for all 1,782 series; RMSLE is over all 28,512 rows of the window.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from favorita_frame import load_canonical  # shared with bench/backtest_xgboost.py

from retail_forecast.config import LSTMConfig
from retail_forecast.features.sequences import ENCODER_FEATURES, FUTURE_FEATURES
from retail_forecast.models.lstm import LSTMForecaster
from retail_forecast.models.lstm_net import LSTMNet, train_epoch
from retail_forecast.schema import (
    DATE,
    FAMILY,
    PROMO,
    STORE,
    TARGET,
)

FOLDS = ("2017-07-31", "2017-07-15", "2017-06-29", "2017-06-13")
HORIZON = 16  # the Favorita data set's horizon (its profile's forecast.horizon)
DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared/data/favorita-store-sales"
logger = logging.getLogger("bench.lstm_quick")


def rmsle(actual: np.ndarray, pred: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.log1p(pred) - np.log1p(actual)) ** 2)))


def mean14(history: pd.DataFrame, future: pd.DataFrame) -> np.ndarray:
    last = history[history[DATE] > history[DATE].max() - pd.Timedelta(days=14)]
    means = last.groupby([STORE, FAMILY], observed=True)[TARGET].mean().rename("m").reset_index()
    return future.merge(means, on=[STORE, FAMILY], how="left")["m"].to_numpy()


def run_fold(frame: pd.DataFrame, start: str, config: LSTMConfig) -> dict[str, float | str]:
    begin = pd.Timestamp(start)
    history = frame[frame[DATE] < begin].reset_index(drop=True)
    window = frame[(frame[DATE] >= begin) & (frame[DATE] < begin + pd.Timedelta(days=HORIZON))]
    future = window[[DATE, STORE, FAMILY, PROMO]].reset_index(drop=True)
    actual = window[TARGET].to_numpy()
    t0 = time.perf_counter()
    model = LSTMForecaster(config, horizon=HORIZON).fit(history)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    pred = model.predict(history, future)[TARGET].to_numpy()
    predict_s = time.perf_counter() - t0
    return {
        "fold": start,
        "rows": len(future),
        "lstm": rmsle(actual, pred),
        "mean14": rmsle(actual, mean14(history, future)),
        "fit_s": round(fit_s, 1),
        "predict_s": round(predict_s, 2),
        "best_epoch": getattr(model, "best_epoch_", -1),
        "val_rmsle": round(getattr(model, "val_rmsle_", float("nan")), 4),
    }


def markdown(table: pd.DataFrame) -> str:
    cells = [[f"{v:.4f}" if isinstance(v, float) else str(v) for v in row] for row in table.values]
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])


def throughput(config: LSTMConfig, seconds: float = 6.0) -> None:
    """Training steps per second of the default-size net on random full-size batches."""
    n_enc, n_fut = len(ENCODER_FEATURES), len(FUTURE_FEATURES)
    for threads in (1, 2):
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        net = LSTMNet(
            n_stores=54,
            n_families=33,
            horizon=HORIZON,
            hidden_size=config.hidden_size,
            day_of_month=True,
        )
        optimizer = torch.optim.Adam(net.parameters(), lr=config.learning_rate)
        x_enc = torch.ones(config.batch_size, config.window, n_enc)
        x_fut = torch.ones(config.batch_size, HORIZON, n_fut)
        target, weight = (
            torch.randn(config.batch_size, HORIZON),
            torch.ones(config.batch_size, HORIZON),
        )
        batch = (x_enc, x_fut, target, weight)
        start, windows = time.perf_counter(), 0
        while time.perf_counter() - start < seconds:
            train_epoch(net, optimizer, [batch], grad_clip=config.grad_clip)
            windows += config.batch_size
        rate = windows / (time.perf_counter() - start)
        print(f"threads={threads} train windows/s={rate:.0f} load_avg={os.getloadavg()[0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "favorita_canonical.parquet"
    )
    parser.add_argument("--folds", default=",".join(FOLDS))
    parser.add_argument("--set", nargs="*", default=[], help="LSTMConfig overrides key=value")
    parser.add_argument("--throughput", action="store_true", help="only time training steps")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    overrides = dict(kv.split("=", 1) for kv in args.set)
    config = LSTMConfig.model_validate(overrides)
    if args.throughput:
        throughput(config)
        return
    if args.cache.exists():
        frame = pd.read_parquet(args.cache)
    else:
        frame = load_canonical(args.data_dir)
        frame.to_parquet(args.cache, index=False)  # outside the repo: never commit real data
    logger.info("canonical frame rows=%d torch_threads=%d", len(frame), config.num_threads)
    results = []
    for start in args.folds.split(","):
        res = run_fold(frame, start, config)
        logger.info("result %s", json.dumps(res))
        results.append(res)
    table = pd.DataFrame(results)
    print(markdown(table))
    print(f"mean lstm={table['lstm'].mean():.4f} mean14={table['mean14'].mean():.4f}")
    print(f"config={json.dumps(config.model_dump(mode='json'))}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"torch={torch.__version__} peak_rss_mb={peak_mb:.0f}")


if __name__ == "__main__":
    main()
