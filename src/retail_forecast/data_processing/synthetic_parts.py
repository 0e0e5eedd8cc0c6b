"""Item-level synthetic panels as Parquet parts in ``train_parts/``, whole series in each part.

A block is the generator's stores x families panel drawn again (its own series-level draws;
the stores, their openings and the calendar shared), each family's series renamed to one item
(``GROCERY I 0003``). Block ``b`` holds item ``b`` of every family, so no series spans two
parts, and an N stores x M items x D days panel is written holding one block in memory.
The marker file (:data:`SERIES_PARTS_MARKER`) tells readers that each part is a block of whole
series, so a part can be one partition of the dask engine (distributed/parquet_input.py).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np
import pandas as pd

from retail_forecast.data_processing.ingest import TRAIN_PARTS_DIR
from retail_forecast.schema import FAMILY, ID
from retail_forecast.utils.io import atomic_path, write_json_atomic

if TYPE_CHECKING:  # the generator's module imports this one
    from retail_forecast.data_processing.synthetic import SyntheticConfig

logger = logging.getLogger(__name__)

SERIES_PARTS_MARKER: Final = "_series_blocks.json"
PART_NAME: Final = "part-{:05d}.parquet"
Generate = Callable[["SyntheticConfig", int], dict[str, pd.DataFrame]]


def item_blocks(config: SyntheticConfig) -> list[list[str]]:
    """Families of each block: all of them, the last block only the first few when M % F."""
    families = config.families()
    n_items, width = config.items_per_store, len(families)
    return [families[: min(width, n_items - start)] for start in range(0, n_items, width)]


def item_name(family: str, block: int) -> str:
    """Return the item series of ``family`` in ``block`` (sorted like the blocks: zero-padded)."""
    return f"{family} {block:04d}"


def _block_rows(frame: pd.DataFrame, families: list[str], block: int) -> pd.DataFrame:
    """Rows of the block's families, each family renamed to its item."""
    kept = frame[frame[FAMILY].isin(families)].reset_index(drop=True)
    kept[FAMILY] = kept[FAMILY].map({f: item_name(f, block) for f in families}).astype(object)
    return kept


def _clear_parts(parts_dir: Path) -> None:
    """Remove the parts of an earlier run, so no stale part is read with the new ones."""
    for path in [*parts_dir.glob("part-*.parquet"), parts_dir / SERIES_PARTS_MARKER]:
        path.unlink(missing_ok=True)


def write_parts(
    out_dir: Path, config: SyntheticConfig, generate: Generate
) -> dict[str, pd.DataFrame]:
    """Write the sales as parts, one block each; return the other files' frames (test, ...).

    ``generate`` is synthetic.generate_frames (passed in: that module imports this one).
    """
    parts_dir = Path(out_dir) / TRAIN_PARTS_DIR
    parts_dir.mkdir(parents=True, exist_ok=True)
    _clear_parts(parts_dir)
    (Path(out_dir) / "train.csv").unlink(missing_ok=True)  # it would be read before the parts
    tests: list[pd.DataFrame] = []
    side: dict[str, pd.DataFrame] = {}
    n_rows = 0
    blocks = item_blocks(config)
    for block, families in enumerate(blocks):
        frames = generate(config, block)
        train = _block_rows(frames.pop("train"), families, block)
        train[ID] = np.arange(n_rows, n_rows + len(train), dtype=np.int64)
        n_rows += len(train)
        with atomic_path(parts_dir / PART_NAME.format(block)) as tmp:
            train.to_parquet(tmp, index=False)
        tests.append(_block_rows(frames.pop("test"), families, block))
        side = side or frames  # stores, oil, holidays: the same in every block
        logger.debug("part %d of %d written: %d rows", block + 1, len(blocks), len(train))
    for path in parts_dir.glob("part-*.parquet"):
        path.chmod(0o644)  # mkstemp creates 0600; these are ordinary shareable data files
    test = pd.concat(tests, ignore_index=True)
    test[ID] = np.arange(n_rows, n_rows + len(test), dtype=np.int64)  # ids follow train's
    marker = {"series_blocks": True, "parts": len(blocks), "rows": n_rows}
    write_json_atomic(parts_dir / SERIES_PARTS_MARKER, marker)
    (parts_dir / SERIES_PARTS_MARKER).chmod(0o644)
    return {**side, "test": test}


def parts_rows(parts_dir: Path) -> int:
    """Rows written to ``parts_dir`` (from its marker)."""
    marker = json.loads((parts_dir / SERIES_PARTS_MARKER).read_text())
    return int(marker["rows"])
