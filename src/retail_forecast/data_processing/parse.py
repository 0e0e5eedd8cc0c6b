"""Vectorised, strict parsers from raw columns (text categoricals or native) to typed arrays.

Each parser returns ``(values, bad)``: typed values (a neutral filler where bad) and a boolean
mask of the rows whose raw value is not acceptable. Text is parsed once per distinct value
(the categories), then mapped to rows through the category codes, so 3M rows with 1,684
distinct dates cost 1,684 date parses.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

INT_PATTERN: Final = r"[+-]?\d{1,18}"
DATE_PATTERN: Final = r"\d{4}-\d{2}-\d{2}"
NAN_LITERALS: Final = frozenset({"nan", "+nan", "-nan"})
TRUE_LITERALS: Final = frozenset({"true", "1"})
FALSE_LITERALS: Final = frozenset({"false", "0"})

BoolArray = npt.NDArray[np.bool_]


def _is_text(series: pd.Series) -> bool:
    return isinstance(series.dtype, pd.CategoricalDtype)


def _text_parts(series: pd.Series) -> tuple[pd.Index, npt.NDArray[np.intp]]:
    """Categories as str and per-row codes (-1 = null)."""
    categories = pd.Index(series.cat.categories.astype(str), dtype=object)
    return categories, series.cat.codes.to_numpy().astype(np.intp)


def _per_row(
    codes: npt.NDArray[np.intp], values: npt.NDArray[np.generic], ok: BoolArray, fill: Any
) -> tuple[npt.NDArray[np.generic], BoolArray]:
    """Map per-category results to rows; null codes are bad."""
    null = codes < 0
    safe = np.where(null, 0, codes)
    if len(values) == 0:
        return np.full(len(codes), fill, dtype=values.dtype), np.ones(len(codes), dtype=bool)
    bad = null | ~ok[safe]
    out = values[safe]
    out[bad] = fill
    return out, bad


def parse_int(series: pd.Series) -> tuple[npt.NDArray[np.int64], BoolArray]:
    """Strict integers: text must be digits (no '1.0'); native floats must be whole."""
    if _is_text(series):
        categories, codes = _text_parts(series)
        ok = np.asarray(categories.str.fullmatch(INT_PATTERN), dtype=bool)
        parsed = pd.to_numeric(pd.Series(categories.where(ok, "0")), errors="coerce")
        values = parsed.fillna(0).to_numpy().astype(np.int64)
        out, bad = _per_row(codes, values, ok, 0)
        return out.astype(np.int64), bad
    if pd.api.types.is_integer_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        if series.hasnans:
            as_float = series.to_numpy(dtype=np.float64, na_value=np.nan)
            bad = np.isnan(as_float)
            return np.where(bad, 0, as_float).astype(np.int64), bad
        return series.to_numpy(dtype=np.int64), np.zeros(len(series), dtype=bool)
    if pd.api.types.is_float_dtype(series.dtype):
        as_float = series.to_numpy(dtype=np.float64, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(as_float) | (as_float != np.floor(as_float))
            bad |= np.abs(as_float) > 2.0**62
        return np.where(bad, 0, as_float).astype(np.int64), bad
    return np.zeros(len(series), dtype=np.int64), np.ones(len(series), dtype=bool)


def parse_float(
    series: pd.Series, *, allow_empty: bool = False
) -> tuple[npt.NDArray[np.float64], BoolArray]:
    """Floats; 'nan'/'inf' literals parse (the caller decides on finiteness).

    With ``allow_empty`` an empty field or a null is a legitimate missing value (NaN, not bad).
    """
    if _is_text(series):
        categories, codes = _text_parts(series)
        values = pd.to_numeric(pd.Series(categories), errors="coerce").to_numpy(np.float64)
        stripped = categories.str.strip()
        literal_nan = np.asarray(stripped.str.lower().isin(NAN_LITERALS), dtype=bool)
        ok = ~np.isnan(values) | literal_nan
        if allow_empty:
            ok |= np.asarray(stripped == "", dtype=bool)
        out, bad = _per_row(codes, values, ok, np.nan)
        if allow_empty:
            bad &= codes >= 0
        return out.astype(np.float64), bad
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        missing = np.asarray(series.isna(), dtype=bool)
        return values, missing & (not allow_empty)
    return np.full(len(series), np.nan), np.ones(len(series), dtype=bool)


def parse_date(series: pd.Series) -> tuple[npt.NDArray[np.datetime64], BoolArray]:
    """ISO ``YYYY-MM-DD`` only (no '2017-8-1', no '16/08/2017'); a real calendar day."""
    if _is_text(series):
        categories, codes = _text_parts(series)
        ok_shape = np.asarray(categories.str.fullmatch(DATE_PATTERN), dtype=bool)
        parsed = pd.to_datetime(
            pd.Series(categories.where(ok_shape, None)), format="%Y-%m-%d", errors="coerce"
        )
        values = parsed.to_numpy(dtype="datetime64[ns]")
        ok = ok_shape & ~np.isnat(values)
        out, bad = _per_row(codes, values, ok, np.datetime64("NaT"))
        return out.astype("datetime64[ns]"), bad
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        index = pd.DatetimeIndex(series).tz_localize(None).normalize()
        stamps: npt.NDArray[np.datetime64] = index.to_numpy(dtype="datetime64[ns]")
        return stamps, np.isnat(stamps)
    return np.full(len(series), np.datetime64("NaT"), dtype="datetime64[ns]"), np.ones(
        len(series), dtype=bool
    )


def parse_text(series: pd.Series) -> tuple[pd.Categorical, BoolArray]:
    """Non-empty text, kept exactly (no stripping or case folding: 'GROCERY I ' is not valid)."""
    if not _is_text(series):
        series = series.astype(str).astype("category")
    categories, codes = _text_parts(series)
    ok = np.asarray(categories != "", dtype=bool)
    _, bad = _per_row(codes, np.arange(len(categories)), ok, 0)
    return pd.Categorical.from_codes(codes.astype(np.int32), categories=categories), bad


def parse_bool(series: pd.Series) -> tuple[BoolArray, BoolArray]:
    """'True'/'False' (any case) or 1/0."""
    if pd.api.types.is_bool_dtype(series.dtype) and not series.hasnans:
        return series.to_numpy(dtype=bool), np.zeros(len(series), dtype=bool)
    if not _is_text(series):
        series = series.astype(str).astype("category")
    categories, codes = _text_parts(series)
    lowered = categories.str.strip().str.lower()
    truthy = np.asarray(lowered.isin(TRUE_LITERALS), dtype=bool)
    ok = truthy | np.asarray(lowered.isin(FALSE_LITERALS), dtype=bool)
    out, bad = _per_row(codes, truthy, ok, False)
    return out.astype(bool), bad
