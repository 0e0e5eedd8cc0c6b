"""Series keys as integers: one vectorised lookup instead of pandas MultiIndex matching."""

from __future__ import annotations

import functools

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
        categories = tuple(str(c) for c in family.cat.categories)
        lookup = np.append(_positions(categories, tuple(families)), -1)
        return lookup[family.cat.codes.to_numpy()]  # code -1 (missing) takes the last: -1
    return pd.Index(families).get_indexer(pd.Index(family.astype(str))).astype(np.int64)


@functools.lru_cache(maxsize=64)
def _positions(names: tuple[str, ...], vocabulary: tuple[str, ...]) -> npt.NDArray[np.int64]:
    """Position of each name in ``vocabulary`` (-1: absent); memoised, requests repeat them."""
    index = {name: i for i, name in enumerate(vocabulary)}
    positions = np.array([index.get(name, -1) for name in names], dtype=np.int64)
    positions.flags.writeable = False
    return positions


def series_keys(frame: pd.DataFrame, families: list[str]) -> npt.NDArray[np.int64]:
    """Per row ``store_nbr * len(families) + family position``; -1 where the family is unknown."""
    pos = family_positions(frame, families)
    stores = frame[STORE].to_numpy(dtype=np.int64)
    return np.where(pos >= 0, stores * len(families) + pos, -1).astype(np.int64)
