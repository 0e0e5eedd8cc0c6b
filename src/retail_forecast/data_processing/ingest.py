"""Read Kaggle-layout Favorita files as raw, untyped tables with source positions.

CSV fields are read as text, so nothing is silently NaN-filled. A numeric column whose every
value is clean (digits only for integers) is converted in one arrow cast; any other text column
becomes a pandas categorical (one Python string per distinct value, not per row) that the
strict parsers of ``parse.py`` judge value by value. Every row keeps its ``source_file`` and
``source_line``:

- CSV: the 1-based physical line in the file, the header being line 1. Files are assumed to
  hold one record per line (true of every Kaggle file); a field with an embedded newline is
  flagged ``malformed_row`` and later lines are shifted by the newlines seen so far.
- Parquet parts: the 0-based row number within the part.

Blank lines (every field empty) are not rows: they are skipped and not counted.

Rows that cannot even be split into the header's columns (too many or too few fields) never
reach the frame; they are returned in ``RawTable.rejected`` as ``malformed_row``. Lines with
bytes that are not UTF-8 are decoded with replacement characters and flagged ``encoding``.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from retail_forecast.data_processing.parse import INT_PATTERN
from retail_forecast.errors import ConfigError, MissingInputError
from retail_forecast.schema import DATE, FAMILY, ID, PROMO, STORE, TARGET

logger = logging.getLogger(__name__)

SOURCE_FILE: Final = "source_file"
SOURCE_LINE: Final = "source_line"
RULE: Final = "rule"
RAW_VALUE: Final = "raw_value"
QUARANTINE_COLUMNS: Final = (SOURCE_FILE, SOURCE_LINE, RULE, RAW_VALUE)

RULE_ENCODING: Final = "encoding"
RULE_MALFORMED: Final = "malformed_row"

TRAIN_PARTS_DIR: Final = "train_parts"
# Numeric text columns: when every value is clean, one arrow cast parses the whole column;
# otherwise the column stays text and the strict per-value parsers judge each value.
NUMERIC_TEXT: Final = {
    ID: pa.int64(),
    STORE: pa.int64(),
    PROMO: pa.int64(),
    "cluster": pa.int64(),
    "transactions": pa.int64(),
    TARGET: pa.float64(),
    "dcoilwtico": pa.float64(),
}
_BOM: Final = b"\xef\xbb\xbf"
_DIGITS = re.compile(r"(\d+)")


@dataclass(frozen=True)
class FileSpec:
    """One input file of the Kaggle layout: its name, whether it is required, its columns."""

    name: str
    filename: str
    required: bool
    columns: tuple[str, ...]
    optional_columns: tuple[str, ...] = ()


SPECS: Final = {
    # "open" (1/0): an optional known-in-advance closure flag (data_processing/panel_shape.py)
    "train": FileSpec(
        "train", "train.csv", True, (DATE, STORE, FAMILY, TARGET, PROMO), (ID, "open")
    ),
    "test": FileSpec("test", "test.csv", False, (ID, DATE, STORE, FAMILY, PROMO), ("open",)),
    "stores": FileSpec(
        "stores", "stores.csv", True, (STORE,), ("city", "state", "type", "cluster")
    ),
    "oil": FileSpec("oil", "oil.csv", False, (DATE, "dcoilwtico")),
    "holidays": FileSpec(
        "holidays",
        "holidays_events.csv",
        False,
        (DATE, "type", "locale", "locale_name", "description", "transferred"),
    ),
    "transactions": FileSpec(
        "transactions", "transactions.csv", False, (DATE, STORE, "transactions")
    ),
}


@dataclass
class RawTable:
    """One input file as read: raw value columns plus where each row came from."""

    name: str
    frame: pd.DataFrame
    source_file: pd.Categorical
    source_line: npt.NDArray[np.int64]
    flags: dict[str, npt.NDArray[np.bool_]] = field(default_factory=dict)
    rejected: pd.DataFrame = field(default_factory=lambda: empty_quarantine())

    @property
    def rows_read(self) -> int:
        return len(self.frame) + len(self.rejected)


def empty_quarantine() -> pd.DataFrame:
    """Return a quarantine frame with no rows and the quarantine columns."""
    return pd.DataFrame(
        {
            SOURCE_FILE: pd.Series([], dtype=object),
            SOURCE_LINE: pd.Series([], dtype=np.int64),
            RULE: pd.Series([], dtype=object),
            RAW_VALUE: pd.Series([], dtype=object),
        }
    )


def resolve_data_dir(uri: str | Path) -> Path:
    """Turn a data location into a local directory; the seam where ``s3://`` will plug in."""
    text = str(uri)
    if text.startswith("file://"):
        return Path(text.removeprefix("file://"))
    if "://" in text:
        scheme = text.split("://", 1)[0]
        raise ConfigError(
            f"{scheme}:// data locations are not supported yet: use a local directory"
        )
    return Path(text)


def read_table(data_dir: Path, spec: FileSpec) -> RawTable | None:
    """Read one file of the layout; None when an optional file is absent."""
    if spec.name == "train":
        parts_dir = data_dir / TRAIN_PARTS_DIR
        if not (data_dir / spec.filename).exists() and parts_dir.is_dir():
            return read_parquet_parts(parts_dir, spec)
    path = data_dir / spec.filename
    if not path.exists():
        if spec.required:
            extra = f" (or {TRAIN_PARTS_DIR}/*.parquet)" if spec.name == "train" else ""
            raise MissingInputError(f"required file {spec.filename}{extra} not found in {data_dir}")
        return None
    return read_csv_text(path, spec)


def _present_columns(header: list[str], spec: FileSpec, where: str) -> list[str]:
    missing = [c for c in spec.columns if c not in header]
    if missing:
        raise MissingInputError(f"{where}: missing required column(s) {', '.join(missing)}")
    wanted = {*spec.columns, *spec.optional_columns}
    return [c for c in header if c in wanted]  # file order, so raw_value reads like the file


def _repair_encoding(data: bytes) -> tuple[bytes, dict[int, str]]:
    """Replace undecodable bytes line by line; return the lines (1-based) that had any."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return data, {}
    lines = data.split(b"\n")
    bad: dict[int, str] = {}
    for i, line in enumerate(lines):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            text = line.decode("utf-8", errors="replace")
            bad[i + 1] = text.rstrip("\r")
            lines[i] = text.encode("utf-8")
    return b"\n".join(lines), bad


def read_csv_text(path: Path, spec: FileSpec, rename: Mapping[str, str] | None = None) -> RawTable:
    """Read a CSV with every column as text; ragged and non-UTF-8 rows are kept apart.

    ``rename``: the file's header name -> canonical name (a user layout, mapping.py).
    """
    data = path.read_bytes()
    data = data.removeprefix(_BOM)
    if not data.endswith(b"\n"):
        data += b"\n"
    data, bad_lines = _repair_encoding(data)
    first = data.split(b"\n", 1)[0].decode("utf-8").rstrip("\r")
    header = [name.strip() for name in next(csv.reader([first]), [])]
    if rename:
        header = [rename.get(name, name) for name in header]
    columns = _present_columns(header, spec, path.name)
    invalid: list[tuple[int, str]] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        invalid.append((int(row.number) if row.number is not None else -1, str(row.text)))
        return "skip"

    table = pacsv.read_csv(
        pa.py_buffer(data),
        read_options=pacsv.ReadOptions(use_threads=False, column_names=header, skip_rows=1),
        parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid, ignore_empty_lines=False),
        convert_options=pacsv.ConvertOptions(
            include_columns=columns,
            column_types=dict.fromkeys(columns, pa.string()),
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    del data
    lines, embedded = _kept_lines(table, [n for n, _ in invalid])
    blank = _blank_rows(table)
    if blank is not None:  # blank lines are not rows: dropped, not counted, lines kept
        table, lines, embedded = table.filter(pa.array(~blank)), lines[~blank], embedded[~blank]
    frame = pd.DataFrame({c: _text_column(table.column(c), c) for c in columns}, copy=False)
    flags = {RULE_ENCODING: np.zeros(len(lines), dtype=bool)}
    if bad_lines:
        flags[RULE_ENCODING] = np.isin(lines, np.fromiter(bad_lines, np.int64, len(bad_lines)))
    if embedded.any():
        flags[RULE_MALFORMED] = embedded
    rejected = pd.DataFrame(
        {
            SOURCE_FILE: path.name,
            SOURCE_LINE: np.array([n for n, _ in invalid], dtype=np.int64),
            RULE: [
                f"{RULE_ENCODING};{RULE_MALFORMED}" if n in bad_lines else RULE_MALFORMED
                for n, _ in invalid
            ],
            RAW_VALUE: [text for _, text in invalid],
        }
    )
    logger.info(
        "read %s: %d rows, %d malformed, %d with bad encoding",
        path.name,
        len(frame),
        len(rejected),
        len(bad_lines),
    )
    return RawTable(
        name=spec.name,
        frame=frame,
        source_file=pd.Categorical.from_codes(
            np.zeros(len(frame), np.int8), pd.Index([path.name], dtype=object)
        ),
        source_line=lines,
        flags=flags,
        rejected=rejected if len(rejected) else empty_quarantine(),
    )


def _blank_rows(table: pa.Table) -> npt.NDArray[np.bool_] | None:
    """Rows whose every field is empty (blank lines); None when there are none."""
    if table.num_columns == 0 or table.num_rows == 0:
        return None
    mask = np.ones(table.num_rows, dtype=np.bool_)
    for column in table.itercolumns():
        empty = pc.equal(pc.binary_length(column), 0).to_numpy(zero_copy_only=False)
        mask &= np.asarray(empty, dtype=np.bool_)
    return mask if mask.any() else None


def _kept_lines(
    table: pa.Table, invalid_lines: list[int]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Physical line of each parsed row, given the lines pyarrow rejected."""
    n_records = table.num_rows + len(invalid_lines)
    lines = np.arange(2, n_records + 2, dtype=np.int64)
    if invalid_lines:
        keep = np.ones(n_records, dtype=bool)
        rejected = np.asarray(invalid_lines, dtype=np.int64) - 2
        keep[rejected[(rejected >= 0) & (rejected < n_records)]] = False
        lines = lines[keep]
    if len(lines) != table.num_rows:  # only with embedded newlines; keep the count right
        lines = np.arange(2, table.num_rows + 2, dtype=np.int64)
    extra = np.zeros(table.num_rows, dtype=np.int64)
    for column in table.itercolumns():
        counts = pc.count_substring(column, "\n").to_numpy(zero_copy_only=False)
        extra += np.asarray(counts, dtype=np.int64)
    embedded = extra > 0
    if embedded.any():
        lines = lines + np.concatenate([[0], np.cumsum(extra)[:-1]])
    return lines, embedded


def _text_column(column: pa.ChunkedArray, name: str) -> pd.Series:
    """Convert a CSV column: numbers when it is clean numeric text, else text (categorical)."""
    target = NUMERIC_TEXT.get(name)
    if target is not None and len(column):
        clean = True
        if pa.types.is_integer(target):  # arrow would also take '0x1F'
            clean = bool(pc.all(pc.match_substring_regex(column, f"^{INT_PATTERN}$")).as_py())
        if clean:
            try:
                cast = pc.cast(column, target)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                cast = None
            # a 'nan' literal must stay text: as a float it would read as a missing value
            if cast is not None and not (
                pa.types.is_floating(target) and pc.any(pc.is_nan(cast)).as_py()
            ):
                series: pd.Series = cast.to_pandas()
                return series
    return _to_series(column)


def _to_series(column: pa.ChunkedArray) -> pd.Series:
    """Text columns -> categorical of str (nulls as NaN); anything else -> native pandas."""
    kind = column.type
    if pa.types.is_dictionary(kind):
        categorical = _dictionary_to_categorical(column)
        if categorical is not None:
            return pd.Series(categorical)
        column = column.cast(kind.value_type)
        kind = kind.value_type
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        column = column.cast(pa.large_string() if pa.types.is_large_binary(kind) else pa.string())
        kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        encoded = pc.dictionary_encode(column.combine_chunks())
        codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
        categories = pd.Index(encoded.dictionary.to_pylist(), dtype=object)
        return pd.Series(pd.Categorical.from_codes(codes.astype(np.int32), categories=categories))
    series: pd.Series = column.to_pandas()
    return series


def _dictionary_to_categorical(column: pa.ChunkedArray) -> pd.Categorical | None:
    """Dictionary-encoded text (parquet) -> categorical without materialising the strings."""
    if column.num_chunks == 0 or not pa.types.is_string(column.type.value_type):
        return None
    unified = column.unify_dictionaries()
    dictionary = unified.chunk(0).dictionary
    if pc.count_distinct(dictionary).as_py() != len(dictionary) or dictionary.null_count:
        return None
    codes = np.concatenate(
        [
            pc.fill_null(chunk.indices.cast(pa.int32()), -1).to_numpy(zero_copy_only=False)
            for chunk in unified.chunks
        ]
    )
    categories = pd.Index(dictionary.to_pylist(), dtype=object)
    return pd.Categorical.from_codes(codes.astype(np.int32), categories=categories)


def _part_order(path: Path) -> tuple[tuple[int, str], ...]:
    """Natural sort key: df_train_part_2 before df_train_part_10."""
    return tuple(
        (int(chunk), "") if chunk.isdigit() else (-1, chunk) for chunk in _DIGITS.split(path.name)
    )


def read_parquet_parts(parts_dir: Path, spec: FileSpec) -> RawTable:
    """Read every ``*.parquet`` part (natural name order); lines are 0-based rows per part."""
    parts = sorted(parts_dir.glob("*.parquet"), key=_part_order)
    if not parts:
        raise MissingInputError(f"no parquet parts in {parts_dir}")
    tables: list[pa.Table] = []
    for part in parts:
        names = pq.read_schema(part).names
        columns = _present_columns(names, spec, f"{parts_dir.name}/{part.name}")
        text = [c for c in columns if pa.types.is_string(pq.read_schema(part).field(c).type)]
        tables.append(pq.read_table(part, columns=columns, read_dictionary=text))
    columns = tables[0].column_names
    frame = pd.DataFrame({c: _to_series(_concat_column(tables, c)) for c in columns}, copy=False)
    sizes = np.array([t.num_rows for t in tables], dtype=np.int64)
    starts = np.repeat(np.cumsum(sizes) - sizes, sizes)
    lines = np.arange(int(sizes.sum()), dtype=np.int64) - starts
    names = [f"{parts_dir.name}/{p.name}" for p in parts]
    codes = np.repeat(np.arange(len(parts), dtype=np.int32), sizes)
    logger.info("read %d parquet parts from %s: %d rows", len(parts), parts_dir, len(frame))
    return RawTable(
        name=spec.name,
        frame=frame,
        source_file=pd.Categorical.from_codes(codes, pd.Index(names, dtype=object)),
        source_line=lines,
    )


def _concat_column(tables: list[pa.Table], name: str) -> pa.ChunkedArray:
    """One column across parts; parts that disagree on its type are all read as text."""
    chunks = [t.column(name) for t in tables if name in t.column_names]
    if len(chunks) != len(tables):
        raise MissingInputError(f"column {name} is missing from some parquet parts")
    kinds = {str(c.type) for c in chunks}
    if len(kinds) > 1:
        chunks = [c.cast(pa.string()) for c in chunks]
    return pa.chunked_array([a for c in chunks for a in c.chunks], type=chunks[0].type)
