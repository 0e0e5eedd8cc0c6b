"""Partitions by series: every series wholly inside exactly one partition."""

from __future__ import annotations

import pandas as pd
import pytest

from retail_forecast.data_processing.dataset import BuiltDataset
from retail_forecast.distributed.cluster import LOCAL_HOST, DaskEngine
from retail_forecast.distributed.partitions import partitioned_frame
from retail_forecast.schema import DATE, FAMILY, STORE


def test_cluster_is_two_processes_on_localhost(engine: DaskEngine) -> None:
    workers = engine.workers()
    assert len(workers) == 2
    assert all(address.startswith(f"tcp://{LOCAL_HOST}:") for address in workers)
    assert engine.client.scheduler.address.startswith(f"tcp://{LOCAL_HOST}:")


@pytest.mark.parametrize(
    ("scattered", "order"), [(False, "shuffled"), (True, "shuffled"), (True, "sorted, str family")]
)
def test_every_series_in_exactly_one_partition(
    engine: DaskEngine, panel: BuiltDataset, scattered: bool, order: str
) -> None:
    sales = panel.sales.sample(frac=1.0, random_state=0)  # any row order in
    if order != "shuffled":  # sorted rows are taken as they are (no copy to sort them)
        sales = panel.sales.astype({FAMILY: str})
    n_days = sales[DATE].nunique()
    frame = partitioned_frame(sales, 5, engine.client if scattered else None)
    assert frame.npartitions == 5
    owner: dict[tuple[int, str], int] = {}
    for i in range(frame.npartitions):
        part = frame.get_partition(i).compute()
        counts = part.groupby([STORE, FAMILY], observed=True).size()
        assert (counts == n_days).all()  # whole series: every day of each
        for key in counts.index:
            assert key not in owner, f"{key} in partitions {owner[key]} and {i}"
            owner[key] = i
    expected = set(sales[[STORE, FAMILY]].drop_duplicates().itertuples(index=False, name=None))
    assert set(owner) == expected
    assert len(frame.compute()) == len(sales)
    assert isinstance(frame.compute().reset_index(drop=True), pd.DataFrame)


def test_partition_count_is_a_multiple_of_the_workers() -> None:
    from retail_forecast.distributed.partitions import partition_count

    assert partition_count(1782, 3_000_000, 2) == 4  # 3 by size, rounded up to the workers
    assert partition_count(1782, 500_000, 2) == 2
    assert partition_count(1, 3_000_000, 2) == 1  # never more partitions than series
    assert partition_count(30490, 59_000_000, 2) == 60
