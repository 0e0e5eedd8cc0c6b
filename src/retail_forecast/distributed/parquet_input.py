"""Read a ``train_parts/`` dataset of whole-series parts lazily: one part, one partition.

When every part holds whole series (the marker ``data generate --items`` writes,
data_processing/synthetic_parts.py), the driver never holds the panel: ``dd.read_parquet``
reads one part per partition on the workers, and each partition goes through the same data
contract as the local engine (validate_tables, then complete_panel) on its own rows, with the
small side tables (stores, holidays) read once here. Parts cut by date (Favorita's
``df_train_part_*``) have no marker and take the local reading (the whole frame in the driver).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from retail_forecast.config import DataConfig
from retail_forecast.data_processing.clean import complete_panel, empty_canonical
from retail_forecast.data_processing.dataset import validate_tables
from retail_forecast.data_processing.ingest import (
    SPECS,
    TRAIN_PARTS_DIR,
    RawTable,
    read_table,
    resolve_data_dir,
)
from retail_forecast.data_processing.synthetic_parts import SERIES_PARTS_MARKER
from retail_forecast.errors import DataValidationError
from retail_forecast.schema import DATE, FAMILY, STORE

if TYPE_CHECKING:
    import dask.dataframe as dd

SIDE = ("stores", "holidays")  # what complete_panel's closures read


def series_parts(data_dir: str | Path) -> list[Path] | None:
    """Return the parts of a whole-series ``train_parts/`` dataset, or None (not such a dataset)."""
    directory = resolve_data_dir(data_dir)
    parts_dir = directory / TRAIN_PARTS_DIR
    if (directory / "train.csv").exists() or not (parts_dir / SERIES_PARTS_MARKER).exists():
        return None
    return sorted(parts_dir.glob("part-*.parquet"))


def _raw_table(piece: pd.DataFrame, name: str) -> RawTable:
    """Return a partition's rows as ingest reads a part: text columns categorical, 0-based lines."""
    columns = {
        c: pd.Categorical(piece[c].astype(object))
        if not pd.api.types.is_numeric_dtype(piece[c])
        else piece[c].to_numpy()
        for c in piece.columns
    }
    return RawTable(
        name="train",
        frame=pd.DataFrame(columns),
        source_file=pd.Categorical.from_codes(
            np.zeros(len(piece), dtype=np.int32), pd.Index([name], dtype=object)
        ),
        source_line=np.arange(len(piece), dtype=np.int64),
    )


def _meta() -> pd.DataFrame:
    return empty_canonical([]).astype({FAMILY: object})


def canonical_part(
    piece: pd.DataFrame, side: dict[str, RawTable | None], config: DataConfig, horizon: int
) -> pd.DataFrame:
    """On a worker: one part's raw rows -> canonical rows (the local engine's contract)."""
    if piece.empty:
        return _meta()
    raws: dict[str, RawTable | None] = {"train": _raw_table(piece, TRAIN_PARTS_DIR), **side}
    frames, _, report = validate_tables(raws, config, horizon=horizon)
    if not report.is_usable:
        raise DataValidationError(f"{TRAIN_PARTS_DIR}: " + "; ".join(report.errors))
    sales, _ = complete_panel(
        frames["train"], holidays=frames.get("holidays"), stores=frames.get("stores")
    )
    return sales.astype({FAMILY: object})  # categories differ between partitions: plain text


def read_series_parts(
    parts: list[Path], data_dir: str | Path, config: DataConfig, *, horizon: int
) -> dd.DataFrame:
    """Return the canonical sales as a Dask frame, one partition per part (read lazily)."""
    import dask.dataframe as dd

    directory = resolve_data_dir(data_dir)
    side = {name: read_table(directory, SPECS[name]) for name in SIDE}
    raw = dd.read_parquet([str(p) for p in parts], split_row_groups=False, blocksize=None)
    meta = _meta()
    out: dd.DataFrame = raw.map_partitions(
        canonical_part, side, config, horizon, meta=meta, align_dataframes=False
    )
    return out


def check_span(frame: dd.DataFrame) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Return the panel's first and last day; every partition must span them (a daily panel)."""
    spans: Any = (
        frame[DATE]
        .map_partitions(
            lambda s: pd.DataFrame({"first": [s.min()], "last": [s.max()]}),
            meta={"first": "datetime64[ns]", "last": "datetime64[ns]"},
        )
        .compute()
    )
    spans = spans.dropna()
    if spans["first"].nunique() != 1 or spans["last"].nunique() != 1:
        raise DataValidationError(
            f"{TRAIN_PARTS_DIR}: parts cover different days "
            f"({spans['first'].min():%Y-%m-%d}..{spans['last'].max():%Y-%m-%d} overall); "
            "each part must hold whole series over the same days"
        )
    return pd.Timestamp(spans["first"].iloc[0]), pd.Timestamp(spans["last"].iloc[0])


def partition_keys(frame: dd.DataFrame) -> pd.DataFrame:
    """Each partition's series (store, family, partition): small, computed on the workers."""
    keys: Any = frame[[STORE, FAMILY]].map_partitions(
        lambda piece, partition_info=None: piece.drop_duplicates().assign(
            _partition=(partition_info or {}).get("number", -1)
        ),
        meta={STORE: "int64", FAMILY: "object", "_partition": "int64"},
    )
    out: pd.DataFrame = keys.compute()
    out[FAMILY] = out[FAMILY].astype(str)
    return out.reset_index(drop=True)


def check_whole_series(keys: pd.DataFrame) -> None:
    """Fail clearly when a series appears in two partitions (parts not cut by series)."""
    split = keys.duplicated([STORE, FAMILY], keep=False)
    if split.any():
        first = keys[split].iloc[0]
        raise DataValidationError(
            f"{TRAIN_PARTS_DIR}: series store_nbr={first[STORE]}, family={first[FAMILY]!r} "
            "is in more than one part; parts must hold whole series"
        )
