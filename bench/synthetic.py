"""Synthetic generator: speed at default and full size, and baseline RMSLE next to the real data.

Usage:
    .venv/bin/python bench/synthetic.py --real-dir ../shared/data/favorita-store-sales

Measures generate_frames and write_dataset wall time (default and --full size), and on the last
16 days (2017-07-31..2017-08-15) the RMSLE of simple baselines: zero, last value, mean of the
last 14 days, seasonal naive (season 7). The same baselines on the real data, same window, show
whether the synthetic signal is about as hard as the real one.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from retail_forecast.data_processing.synthetic import default_config, generate_frames, write_dataset

Matrix = npt.NDArray[np.float64]


def baselines(train: pd.DataFrame) -> dict[str, float]:
    """RMSLE over the last 16 train days of baselines fitted on the days before."""
    frame = train.assign(date=pd.to_datetime(train["date"]))
    wide = frame.pivot_table(index=["store_nbr", "family"], columns="date", values="sales")
    actual, hist = wide.iloc[:, -16:].to_numpy(), wide.iloc[:, :-16].to_numpy()

    def rmsle(forecast: Matrix) -> float:
        return float(np.sqrt(np.mean((np.log1p(forecast) - np.log1p(actual)) ** 2)))

    def repeat(column: Matrix) -> Matrix:
        return np.repeat(column[:, None], 16, axis=1)

    return {
        "zero": rmsle(np.zeros_like(actual)),
        "last value": rmsle(repeat(hist[:, -1])),
        "mean of last 14 days": rmsle(repeat(hist[:, -14:].mean(axis=1))),
        "seasonal naive (7)": rmsle(np.tile(hist[:, -7:], 3)[:, :16]),
    }


def read_real_train(real_dir: Path) -> pd.DataFrame:
    parts = sorted((real_dir / "train_parts").glob("*.parquet"))
    frame = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    return frame[frame["date"] >= "2017-05-01"]


def timed(label: str, func: object) -> object:
    start = time.perf_counter()
    result = func()  # type: ignore[operator]
    print(f"{label}: {time.perf_counter() - start:.2f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--real-dir", type=Path, default=None)
    args = parser.parse_args()

    for full in (False, True):
        config = default_config(full=full)
        size = f"{config.n_stores}x{config.n_families}x{config.n_days}"
        frames = timed(f"generate_frames {size}", lambda c=config: generate_frames(c))
        print(f"  train rows: {len(frames['train']):,}")  # type: ignore[index]
        with tempfile.TemporaryDirectory() as tmp:
            paths = timed(
                f"write_dataset {size}", lambda c=config, t=tmp: write_dataset(Path(t), c)
            )
            mb = sum(p.stat().st_size for p in paths.values()) / 1e6  # type: ignore[attr-defined]
            print(f"  files: {mb:.1f} MB")

    rows = {}
    for seed in (0, 1, 2):
        rows[f"synthetic default, seed {seed}"] = baselines(
            generate_frames(default_config(seed=seed))["train"]
        )
    if args.real_dir is not None:
        rows["real Favorita"] = baselines(read_real_train(args.real_dir))
    table = pd.DataFrame(rows).T.round(4)
    print("RMSLE on the last 16 days (2017-07-31..2017-08-15):")
    print("| data | " + " | ".join(table.columns) + " |")
    print("|---|" + "---|" * len(table.columns))
    for name, row in table.iterrows():
        print(f"| {name} | " + " | ".join(f"{v:.4f}" for v in row) + " |")


if __name__ == "__main__":
    main()
