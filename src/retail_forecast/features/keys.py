"""Series keys as integers: one vectorised lookup instead of pandas MultiIndex matching."""

from __future__ import annotations

import functools
from typing import cast

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
        values = cast(pd.Categorical, family.array)
        lookup = _code_positions(tuple(values.categories.tolist()), tuple(families))
        codes: npt.NDArray[np.int64] = lookup[np.asarray(values.codes)]
        return codes  # code -1 (missing) took the last entry: -1
    return pd.Index(families).get_indexer(pd.Index(family.astype(str))).astype(np.int64)


@functools.lru_cache(maxsize=64)
def _code_positions(
    categories: tuple[object, ...], vocabulary: tuple[str, ...]
) -> npt.NDArray[np.int64]:
    """Per category code its name's position in ``vocabulary`` (-1: absent), then a last -1.

    Memoised (keyed by the categories in order): requests repeat the same two vocabularies.
    """
    index = {name: i for i, name in enumerate(vocabulary)}
    positions = [index.get(str(name), -1) for name in categories]
    out = np.array([*positions, -1], dtype=np.int64)
    out.flags.writeable = False
    return out


@functools.lru_cache(maxsize=8)
def family_dtype(families: tuple[str, ...]) -> tuple[pd.CategoricalDtype, dict[str, int]]:
    """Return the canonical family dtype (sorted ``families``) and each family's code in it.

    Memoised: serving builds request and history frames with it on every request.
    """
    categories = sorted(families)
    return pd.CategoricalDtype(categories), {name: i for i, name in enumerate(categories)}


def series_keys(frame: pd.DataFrame, families: list[str]) -> npt.NDArray[np.int64]:
    """Per row ``store_nbr * len(families) + family position``; -1 where the family is unknown."""
    pos = family_positions(frame, families)
    stores = frame[STORE].to_numpy(dtype=np.int64)
    return np.where(pos >= 0, stores * len(families) + pos, -1).astype(np.int64)
