"""Series keys as integers: one vectorised lookup instead of pandas MultiIndex matching."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from retail_forecast.schema import FAMILY, STORE


def family_names(frame: pd.DataFrame) -> list[str]:
    """Return the family names a frame can hold (categories of a categorical, else values)."""
    family = frame[FAMILY]
    if isinstance(family.dtype, pd.CategoricalDtype):
        return [str(f) for f in family.cat.categories]
    return [str(f) for f in family.unique()]


def family_positions(frame: pd.DataFrame, families: list[str]) -> npt.NDArray[np.int64]:
    """Per row the position of its family in ``families`` (-1: not there)."""
    family = frame[FAMILY]
    if isinstance(family.dtype, pd.CategoricalDtype):
        lookup = pd.Index(families).get_indexer(family.cat.categories.astype(str))
        codes = family.cat.codes.to_numpy()
        return np.where(codes >= 0, lookup[codes], -1).astype(np.int64)
    return pd.Index(families).get_indexer(pd.Index(family.astype(str))).astype(np.int64)


def series_keys(frame: pd.DataFrame, families: list[str]) -> npt.NDArray[np.int64]:
    """Per row ``store_nbr * len(families) + family position``; -1 where the family is unknown."""
    pos = family_positions(frame, families)
    stores = frame[STORE].to_numpy(dtype=np.int64)
    return np.where(pos >= 0, stores * len(families) + pos, -1).astype(np.int64)
