"""Build the canonical sales frame from the real train parts (until the data layer ships)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from retail_forecast.schema import DATE, FAMILY, IS_CLOSED, PROMO, STORE, TARGET


def load_canonical(data_dir: Path) -> pd.DataFrame:
    """Prefer the data layer's build_dataset; else concatenate the parquet parts directly."""
    try:
        from retail_forecast.config import DataConfig
        from retail_forecast.data_processing.dataset import build_dataset
    except ImportError:
        return _from_parts(data_dir)
    return build_dataset(data_dir, DataConfig(data_dir=str(data_dir))).sales


def _from_parts(data_dir: Path) -> pd.DataFrame:
    parts = sorted((Path(data_dir) / "train_parts").glob("*.parquet"))
    raw = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    raw[DATE] = pd.to_datetime(raw[DATE])
    families = sorted(raw[FAMILY].unique())
    stores = sorted(raw[STORE].unique())
    dates = pd.date_range(raw[DATE].min(), raw[DATE].max(), freq="D")
    grid = pd.MultiIndex.from_product([stores, families, dates], names=[STORE, FAMILY, DATE])
    frame = raw.set_index([STORE, FAMILY, DATE])[[TARGET, PROMO]].reindex(grid).reset_index()
    missing = frame[TARGET].isna().to_numpy()
    frame[IS_CLOSED] = (
        missing & (frame[DATE].dt.month == 12).to_numpy() & (frame[DATE].dt.day == 25).to_numpy()
    )
    if (missing & ~frame[IS_CLOSED].to_numpy()).any():
        raise ValueError("train parts have gaps other than 25 December")
    frame[TARGET] = frame[TARGET].fillna(0.0).astype(np.float64)
    frame[PROMO] = frame[PROMO].fillna(0).astype(np.int64)
    frame[STORE] = frame[STORE].astype(np.int64)
    frame[FAMILY] = pd.Categorical(frame[FAMILY], categories=families)
    return frame[[DATE, STORE, FAMILY, TARGET, PROMO, IS_CLOSED]]
