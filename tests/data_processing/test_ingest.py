"""Reading the Kaggle layout: text-first CSV, ragged and non-UTF-8 rows, parquet parts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from retail_forecast.data_processing.ingest import (
    SPECS,
    read_csv_text,
    read_parquet_parts,
    read_table,
    resolve_data_dir,
)
from retail_forecast.errors import ConfigError, MissingInputError


def test_csv_is_read_as_text_nothing_nan_filled(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_bytes(
        b"\xef\xbb\xbfid,date,store_nbr,family,sales,onpromotion\n"
        b'0,2017-01-01,1,"LIQUOR,WINE,BEER",,0\n'
        b"1,2017-01-01,01,A,1.50,\n"
    )
    raw = read_csv_text(path, SPECS["train"])
    assert list(raw.frame.columns) == ["id", "date", "store_nbr", "family", "sales", "onpromotion"]
    assert raw.frame["family"].tolist() == ["LIQUOR,WINE,BEER", "A"]
    assert raw.frame["sales"].tolist() == ["", "1.50"]  # not all numbers: text; "" is not NaN
    assert raw.frame["onpromotion"].tolist() == ["0", ""]
    assert raw.frame["store_nbr"].tolist() == [1, 1]  # clean integers: parsed in one cast
    assert raw.source_line.tolist() == [2, 3]


def test_ragged_rows_are_rejected_with_their_line(tmp_path: Path) -> None:
    path = tmp_path / "stores.csv"
    path.write_text("store_nbr,city,state,type,cluster\n1,a,b,c,1\n2,a,b\n3,a,b,c,1,9\n4,a,b,c,4\n")
    raw = read_csv_text(path, SPECS["stores"])
    assert raw.frame["store_nbr"].tolist() == [1, 4]
    assert raw.source_line.tolist() == [2, 5]
    assert raw.rejected[["source_line", "rule", "raw_value"]].values.tolist() == [
        [3, "malformed_row", "2,a,b"],
        [4, "malformed_row", "3,a,b,c,1,9"],
    ]
    assert raw.rows_read == 4


def test_non_utf8_line_is_flagged_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "stores.csv"
    path.write_bytes(
        b"store_nbr,city,state,type,cluster\n1,Quito,P,D,1\n2,Cuenca\xe9,A,D,2\n3,x\xff\n"
    )
    raw = read_csv_text(path, SPECS["stores"])
    assert raw.source_line.tolist() == [2, 3]
    assert raw.flags["encoding"].tolist() == [False, True]
    assert raw.frame["city"].tolist() == ["Quito", "Cuenca\ufffd"]
    assert raw.rejected[["source_line", "rule"]].values.tolist() == [[4, "encoding;malformed_row"]]


def test_missing_required_column_names_it(tmp_path: Path) -> None:
    path = tmp_path / "stores.csv"
    path.write_text("store,city\n1,a\n")
    with pytest.raises(MissingInputError, match=r"stores\.csv: missing required column.*store_nbr"):
        read_csv_text(path, SPECS["stores"])


def test_empty_file_is_missing_columns(tmp_path: Path) -> None:
    (tmp_path / "stores.csv").write_bytes(b"")
    with pytest.raises(MissingInputError):
        read_table(tmp_path, SPECS["stores"])


def _write_part(path: Path, ids: range) -> None:
    frame = pd.DataFrame(
        {
            "id": np.array(ids, dtype=np.int64),
            "date": "2017-01-01",
            "store_nbr": np.array(ids, dtype=np.int64) + 1,
            "family": "A",
            "sales": 1.0,
            "onpromotion": np.zeros(len(ids), dtype=np.int64),
        }
    )
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)


def test_parquet_parts_natural_order_and_row_numbers(tmp_path: Path) -> None:
    parts = tmp_path / "train_parts"
    parts.mkdir()
    _write_part(parts / "df_train_part_10.parquet", range(20, 22))
    _write_part(parts / "df_train_part_2.parquet", range(10, 13))
    _write_part(parts / "df_train_part_0.parquet", range(0, 2))
    raw = read_parquet_parts(parts, SPECS["train"])
    assert raw.frame["id"].tolist() == [0, 1, 10, 11, 12, 20, 21]
    assert raw.source_line.tolist() == [0, 1, 0, 1, 2, 0, 1]
    assert list(raw.source_file[[0, 2, 6]]) == [
        "train_parts/df_train_part_0.parquet",
        "train_parts/df_train_part_2.parquet",
        "train_parts/df_train_part_10.parquet",
    ]
    assert isinstance(raw.frame["date"].dtype, pd.CategoricalDtype)
    assert raw.frame["store_nbr"].dtype == np.int64


def test_train_csv_wins_over_parts_and_parts_are_used_without_it(tmp_path: Path) -> None:
    parts = tmp_path / "train_parts"
    parts.mkdir()
    _write_part(parts / "df_train_part_0.parquet", range(3))
    assert read_table(tmp_path, SPECS["train"]).rows_read == 3
    (tmp_path / "train.csv").write_text("id,date,store_nbr,family,sales,onpromotion\n")
    assert read_table(tmp_path, SPECS["train"]).rows_read == 0


def test_optional_file_absent_is_none_required_raises(tmp_path: Path) -> None:
    assert read_table(tmp_path, SPECS["oil"]) is None
    with pytest.raises(MissingInputError, match=r"train\.csv"):
        read_table(tmp_path, SPECS["train"])


def test_data_location_seam() -> None:
    assert resolve_data_dir("file:///srv/data/x") == Path("/srv/data/x")
    assert resolve_data_dir("data/default") == Path("data/default")
    with pytest.raises(ConfigError, match="s3://"):
        resolve_data_dir("s3://bucket/prefix")


def test_blank_lines_are_not_rows_and_lines_stay_right(tmp_path: Path) -> None:
    path = tmp_path / "stores.csv"
    path.write_text("store_nbr,city,state,type,cluster\n\n1,a,b,c,1\n\n2,a,b,c,x\n\n")
    raw = read_csv_text(path, SPECS["stores"])
    assert raw.rows_read == 2
    assert raw.source_line.tolist() == [3, 5]
    assert raw.frame["cluster"].tolist() == ["1", "x"]


def test_header_only_without_final_newline(tmp_path: Path) -> None:
    path = tmp_path / "stores.csv"
    path.write_text("store_nbr,city,state,type,cluster")
    assert read_csv_text(path, SPECS["stores"]).rows_read == 0
