"""Partitions by series: every series wholly inside one partition, contiguous blocks of series.

Features read only days of their own series (features/builder.py), so a partition holding
whole series builds exactly the rows the whole frame would, without talking to the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pandas as pd

from retail_forecast.features.builder import Panel, is_series_sorted
from retail_forecast.schema import DATE, FAMILY, STORE

if TYPE_CHECKING:
    import dask.dataframe as dd

    from distributed import Client

PARTITION = "_partition"
PARTITION_ROWS = 1_000_000  # rows per partition: a worker's features stay ~100 MB


def partition_count(n_series: int, n_rows: int, n_workers: int) -> int:
    """Partitions for a frame: ~PARTITION_ROWS rows each, a multiple of the workers.

    A multiple, so that every worker builds as many partitions (3 on 2 workers would leave
    one worker idle for a third of the feature stage).
    """
    workers = max(1, n_workers)
    by_size = -(-n_rows // PARTITION_ROWS)
    return max(1, min(n_series, -(-by_size // workers) * workers))


def series_blocks(n_series: int, n_partitions: int) -> npt.NDArray[np.int64]:
    """Return each series' partition (sorted order): contiguous blocks of near-equal size."""
    return np.asarray(np.arange(n_series) * n_partitions // n_series, dtype=np.int64)


def partitioned_frame(
    frame: pd.DataFrame, n_partitions: int, client: Client | None = None
) -> dd.DataFrame:
    """Return the frame as a Dask frame indexed by partition; no series straddles two.

    With a ``client`` the partitions are scattered to the workers directly; without one they
    travel inside the task graph, through the scheduler (bench/scale.py, the read and feature
    stages and the scheduler's memory on Favorita).
    """
    import dask.dataframe as dd

    ordered = frame  # build_dataset's frame comes sorted: no copy to sort it again
    if not is_series_sorted(frame):
        ordered = frame.sort_values([STORE, FAMILY, DATE], kind="stable")
    series = _series_numbers(ordered)
    n_series = int(series[-1]) + 1
    n_partitions = min(n_partitions, n_series)
    part = series_blocks(n_series, n_partitions)[series]
    indexed = ordered.set_axis(pd.Index(part, name=PARTITION))  # sorted: rows keep their order
    if client is None:
        out: dd.DataFrame = dd.from_pandas(indexed, npartitions=n_partitions, sort=True)
        return out
    bounds = np.searchsorted(part, np.arange(n_partitions + 1))
    pieces = [indexed.iloc[bounds[p] : bounds[p + 1]] for p in range(n_partitions)]
    futures = client.scatter(pieces)
    divisions = (*range(n_partitions), n_partitions - 1)
    scattered: dd.DataFrame = dd.from_delayed(
        futures, meta=indexed.head(0), divisions=divisions, verify_meta=False
    )
    return scattered


def _series_numbers(ordered: pd.DataFrame) -> npt.NDArray[np.int64]:
    """Return each row's series number (0, 1, ...) in a frame sorted by series."""
    stores = ordered[STORE].to_numpy()
    family = ordered[FAMILY]
    families: npt.NDArray[np.generic] = (
        family.cat.codes.to_numpy()
        if isinstance(family.dtype, pd.CategoricalDtype)
        else family.astype(str).to_numpy()
    )
    starts = np.ones(len(ordered), dtype=np.int64)
    starts[1:] = (stores[1:] != stores[:-1]) | (families[1:] != families[:-1])
    return np.cumsum(starts) - 1


def panel_block(panel: Panel, start: int, stop: int) -> Panel:
    """Series ``start:stop`` of a panel (the same days)."""
    rows = slice(start, stop)
    return Panel(
        keys=panel.keys.iloc[rows].reset_index(drop=True),
        dates=panel.dates,
        log_sales=panel.log_sales[rows],
        promo=panel.promo[rows],
        closed=panel.closed[rows],
        sales=panel.sales[rows],
    )
