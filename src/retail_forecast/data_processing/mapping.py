"""A user's file layout read as the Kaggle layout: ``[data.files]`` and ``[data.columns]``.

At read time the mapped columns are renamed to the canonical names, a one-level panel gets the
single family ``ALL``, a missing promotion column reads as 0, non-ISO dates are rewritten from
``date_format``, and each mapped column is checked to hold the kind of values it must. Everything
after this (validation, cleaning, the models) sees the Kaggle layout's raw tables. A bad mapping
is a ConfigError that names the setting, the column and what the file holds. No mapping at all
reads exactly what ``ingest.read_table`` reads.
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from retail_forecast.config import DataConfig
from retail_forecast.data_processing.ingest import (
    SPECS,
    RawTable,
    empty_quarantine,
    read_csv_text,
    read_table,
)
from retail_forecast.data_processing.parse import DATE_PATTERN, INT_PATTERN
from retail_forecast.errors import ConfigError, DataValidationError, MissingInputError
from retail_forecast.schema import DATE, FAMILY, ID, PROMO, STORE, TARGET
from retail_forecast.settings_profile import ColumnMapping


class MappingError(ConfigError, DataValidationError):
    """A profile's mapping that does not fit the files: a setting, and data it cannot read.

    A DataValidationError too, so every command reports it as it reports unusable data.
    """


OPEN: Final = "open"
SINGLE_FAMILY: Final = "ALL"  # the family of every series of a one-level (store only) panel
# [data.columns] key -> the canonical column it names
CANONICAL: Final = {
    "date": DATE,
    "store": STORE,
    "item": FAMILY,
    "sales": TARGET,
    "promotion": PROMO,
    "open": OPEN,
}
# Columns that must hold numbers (integers where True); a column mostly not numeric is a
# mapping error, a few bad values are quarantined row by row as in the Kaggle layout.
NUMERIC: Final = {STORE: True, TARGET: False, PROMO: False, OPEN: True}


def is_mapped(config: DataConfig) -> bool:
    """Say whether the profile names any file or column (a user layout)."""
    return "columns" in config.model_dump() or "files" in config.model_dump()


def read_tables(directory: Path, config: DataConfig) -> dict[str, RawTable | None]:
    """Every input table by its SPECS name, through the mapping when there is one."""
    if not is_mapped(config):
        return {name: read_table(directory, spec) for name, spec in SPECS.items()}
    files = config.files
    train = _read_sales(directory, config.columns, "train", ("sales", files.sales or "train.csv"))
    test = _read_sales(directory, config.columns, "test", ("future", files.future or "test.csv"))
    if train is None:  # required: _read_sales raised already
        raise MissingInputError(f"no sales file in {directory}")
    holidays = _read_side(directory, config.columns, "holidays", files.holidays)
    stores = _read_side(directory, config.columns, "stores", files.stores)
    return {
        "train": train,
        "test": test,
        "stores": stores if stores is not None else _stores_of(train),
        "oil": read_table(directory, SPECS["oil"]),
        "holidays": holidays,
        "transactions": read_table(directory, SPECS["transactions"]),
    }


def input_paths(directory: Path, config: DataConfig) -> list[Path]:
    """List the files a mapped import reads, in a stable order (its run id hashes them)."""
    files = config.files
    patterns = [files.sales or "train.csv", files.future or "test.csv"]
    patterns += [files.stores or SPECS["stores"].filename]
    patterns += [files.holidays or SPECS["holidays"].filename]
    patterns += [SPECS["oil"].filename, SPECS["transactions"].filename]
    return [path for pattern in patterns for path in sorted(directory.glob(pattern))]


def _setting(key: str, columns: ColumnMapping) -> str:
    given = getattr(columns, key)
    if given is None:
        return f'column "{CANONICAL[key]}" (data.columns.{key} not set)'
    return f'data.columns.{key} = "{given}": column "{given}"'


def _matching(directory: Path, key: str, pattern: str, *, required: bool) -> list[Path]:
    paths = sorted(p for p in directory.glob(pattern) if p.is_file())
    if not paths and required:
        found = ", ".join(sorted(p.name for p in directory.iterdir())) or "nothing"
        raise MissingInputError(
            f'data.files.{key} = "{pattern}": no file matches in {directory}; found: {found}'
        )
    for path in paths:
        if path.suffix.lower() != ".csv":
            raise MappingError(f'data.files.{key} = "{pattern}": {path.name} is not a .csv file')
    return paths


def _header(path: Path) -> list[str]:
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
        return [name.strip() for name in next(csv.reader(handle), [])]


def _rename(columns: ColumnMapping, header: list[str], where: str) -> dict[str, str]:
    """File name -> canonical name; a mapped column the file lacks is named with what it has."""
    rename: dict[str, str] = {}
    for key, canonical in CANONICAL.items():
        given = getattr(columns, key)
        if given is None:
            continue
        if given not in header:
            found = ", ".join(header)
            raise MappingError(f"{_setting(key, columns)} not in {where}; found: {found}")
        if given in rename:
            other = next(k for k, c in CANONICAL.items() if c == rename[given])
            raise MappingError(
                f'data.columns.{key} = "{given}": data.columns.{other} names that column too'
            )
        rename[given] = canonical
    return rename


def _read_sales(
    directory: Path, columns: ColumnMapping, name: str, file_setting: tuple[str, str]
) -> RawTable | None:
    """Read the sales (train) or future (test) files: renamed, completed, checked, joined."""
    key, pattern = file_setting
    paths = _matching(directory, key, pattern, required=name == "train")
    if not paths:
        return None
    spec = SPECS[name]
    optional = {FAMILY, PROMO, ID}  # filled below when the file has none
    spec = dataclasses.replace(
        spec,
        columns=tuple(c for c in spec.columns if c not in optional),
        optional_columns=(*spec.optional_columns, *(optional & set(spec.columns))),
    )
    tables: list[RawTable] = []
    for path in paths:
        header = _header(path)
        rename = _rename(columns, header, path.name)
        named = {rename.get(column, column) for column in header}
        for key_name in ("date", "store", "sales")[: 3 if name == "train" else 2]:
            if CANONICAL[key_name] not in named:
                raise MappingError(
                    f"{_setting(key_name, columns)} not in {path.name}; found: {', '.join(header)}"
                )
        table = read_csv_text(path, spec, rename)
        _complete(table, named, offset=sum(t.frame.shape[0] for t in tables))
        _check_values(table, columns, path.name)
        tables.append(table)
    return _concat(tables)


def _complete(table: RawTable, named: set[str], *, offset: int) -> None:
    """Add the canonical columns a user layout may leave out: family, promotion, test id."""
    rows = len(table.frame)
    if FAMILY not in named:
        single = pd.Index([SINGLE_FAMILY], dtype=object)
        codes = np.zeros(rows, dtype=np.int32)
        table.frame[FAMILY] = pd.Categorical.from_codes(codes, categories=single)
    if PROMO not in named:
        table.frame[PROMO] = np.zeros(rows, dtype=np.int64)
    if table.name == "test" and ID not in named:
        table.frame[ID] = np.arange(offset, offset + rows, dtype=np.int64)


def _check_values(table: RawTable, columns: ColumnMapping, where: str) -> None:
    """Dates to ISO (``date_format``), and numeric columns that are numbers at all."""
    frame = table.frame
    frame[DATE] = _iso_dates(frame[DATE], columns, where)
    for canonical, integer in NUMERIC.items():
        series = frame.get(canonical)
        if series is None or not isinstance(series.dtype, pd.CategoricalDtype):
            continue  # absent, or the whole column was cast to numbers when read
        key = next(k for k, c in CANONICAL.items() if c == canonical)
        pattern = INT_PATTERN if integer else r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?"
        share, examples = _share_matching(series, pattern)
        if share < 0.5:
            kind = "integers" if integer else "numbers"
            raise MappingError(
                f"{_setting(key, columns)} in {where} must hold {kind}; found "
                f"{1 - share:.0%} of values that are not, e.g. {examples}"
            )


def _share_matching(series: pd.Series, pattern: str) -> tuple[float, str]:
    """Share of non-null rows whose text matches, and a few values that do not."""
    categories = pd.Index(series.cat.categories.astype(str), dtype=object)
    ok = np.asarray(categories.str.strip().str.fullmatch(pattern), dtype=bool)
    codes = series.cat.codes.to_numpy()
    counts = np.bincount(codes[codes >= 0], minlength=len(categories))
    total = int(counts.sum())
    share = float(counts[ok].sum()) / total if total else 1.0
    bad = [f'"{value}"' for value in categories[~ok][:3]]
    return share, ", ".join(bad)


def _iso_dates(series: pd.Series, columns: ColumnMapping, where: str) -> pd.Series:
    """Rewrite dates in ``date_format`` as ISO text; values that do not parse stay as they were."""
    if not isinstance(series.dtype, pd.CategoricalDtype):
        return series
    iso_share, examples = _share_matching(series, DATE_PATTERN)
    if iso_share >= 0.5:
        return series
    if columns.date_format is None:
        raise MappingError(
            f"{_setting('date', columns)} in {where} holds no ISO dates (e.g. {examples}); "
            'set data.columns.date_format, e.g. "%d.%m.%Y"'
        )
    categories = pd.Index(series.cat.categories.astype(str), dtype=object)
    parsed = pd.to_datetime(categories, format=columns.date_format, errors="coerce")
    if parsed.notna().sum() == 0:
        raise MappingError(
            f'data.columns.date_format = "{columns.date_format}": no value of '
            f"{_setting('date', columns)} in {where} matches it (e.g. {examples})"
        )
    iso = np.where(parsed.notna(), parsed.strftime("%Y-%m-%d"), categories.to_numpy())
    codes = series.cat.codes.to_numpy()
    values = np.where(codes >= 0, iso[np.maximum(codes, 0)], None)
    return pd.Series(values, index=series.index, dtype="category")


def _concat(tables: list[RawTable]) -> RawTable:
    """One table from several files of a glob, keeping each row's file and line."""
    if len(tables) == 1:
        return tables[0]
    frame = pd.DataFrame(
        {c: _concat_series([t.frame[c] for t in tables]) for c in tables[0].frame.columns}
    )
    flags = {
        rule: np.concatenate([t.flags.get(rule, np.zeros(len(t.frame), bool)) for t in tables])
        for rule in {rule for t in tables for rule in t.flags}
    }
    rejected = [t.rejected for t in tables if len(t.rejected)]
    return RawTable(
        name=tables[0].name,
        frame=frame,
        source_file=pd.api.types.union_categoricals([t.source_file for t in tables]),
        source_line=np.concatenate([t.source_line for t in tables]),
        flags=flags,
        rejected=pd.concat(rejected, ignore_index=True) if rejected else empty_quarantine(),
    )


def _concat_series(parts: list[pd.Series]) -> pd.Series:
    if all(isinstance(p.dtype, pd.CategoricalDtype) for p in parts):
        joined = pd.api.types.union_categoricals(parts, ignore_order=True)
        return pd.Series(joined)
    if any(isinstance(p.dtype, pd.CategoricalDtype) for p in parts):  # text in some files
        text = pd.concat([p.astype(object).astype(str) for p in parts], ignore_index=True)
        return pd.Series(pd.Categorical(text))
    return pd.concat(parts, ignore_index=True)


def _read_side(
    directory: Path, columns: ColumnMapping, name: str, given: str | None
) -> RawTable | None:
    """Read the stores or holidays table; its store and date columns may be mapped names."""
    spec = SPECS[name]
    path = directory / (given or spec.filename)
    if not path.is_file():
        if given is not None:
            raise MissingInputError(f'data.files.{name} = "{given}": no such file in {directory}')
        return None
    header = _header(path)
    rename = {
        mapped: CANONICAL[key]
        for key in ("date", "store")
        if (mapped := getattr(columns, key)) is not None and mapped in header
    }
    table = read_csv_text(path, dataclasses.replace(spec, filename=path.name), rename)
    if DATE in table.frame:
        table.frame[DATE] = _iso_dates(table.frame[DATE], columns, path.name)
    return table


def _stores_of(train: RawTable) -> RawTable:
    """Build a stores table of the sales file's store ids, for a layout that has none."""
    store = train.frame[STORE]
    if isinstance(store.dtype, pd.CategoricalDtype):
        text = pd.Series(store.cat.categories.astype(str))
        ids = pd.to_numeric(text[text.str.fullmatch(INT_PATTERN)], errors="coerce").dropna()
    else:
        ids = pd.Series(store.dropna().unique())
    unique = np.unique(ids.to_numpy(dtype=np.int64))
    label = pd.Index([f"{train.source_file.categories[0]} (store ids)"], dtype=object)
    return RawTable(
        name="stores",
        frame=pd.DataFrame({STORE: unique}),
        source_file=pd.Categorical.from_codes(np.zeros(len(unique), np.int8), label),
        source_line=np.arange(2, len(unique) + 2, dtype=np.int64),
    )
