"""Data sets on a real S3-compatible server: raw and processed round trips, half uploads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from botocore.awsrequest import AWSResponse

from retail_forecast.aws.datasets import download_dataset, upload_dataset
from retail_forecast.config import DataConfig
from retail_forecast.data_processing.dataset import build_dataset
from retail_forecast.errors import MissingInputError
from retail_forecast.pipeline.data_import import import_dataset, load_processed

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def test_raw_round_trip_builds_the_same_frame(
    s3: Any, bucket: str, tmp_path: Path, tiny_kaggle: Any
) -> None:
    raw = tiny_kaggle.write()
    uploaded = upload_dataset(raw, bucket=bucket, prefix="p", client=s3)
    assert uploaded.uri == f"s3://{bucket}/p/data/"
    assert "train.csv" in uploaded.files
    assert "stores.csv" in uploaded.files

    local = download_dataset(f"s3://{bucket}/p", tmp_path / "cache", client=s3)

    assert (local / "train.csv").read_bytes() == (raw / "train.csv").read_bytes()
    expected = build_dataset(raw, DataConfig()).sales
    pd.testing.assert_frame_equal(build_dataset(local, DataConfig()).sales, expected)


def test_processed_upload_is_kaggle_layout_and_rebuilds(
    s3: Any, bucket: str, tmp_path: Path, tiny_kaggle: Any
) -> None:
    config = DataConfig(processed_dir=tmp_path / "processed", quarantine_dir=tmp_path / "q")
    import_dataset(tiny_kaggle.write(), config)
    sales, test = load_processed(config.processed_dir)
    assert sales["is_closed"].any()  # Dec 25 was filled as closed

    upload_dataset(config.processed_dir, bucket=bucket, prefix="p", client=s3)
    local = download_dataset(f"s3://{bucket}/p/data/", tmp_path / "cache", client=s3)

    train_csv = pd.read_csv(local / "train.csv")
    assert list(train_csv.columns) == ["id", "date", "store_nbr", "family", "sales", "onpromotion"]
    assert not train_csv["date"].str.endswith("12-25").any()  # Kaggle has no Dec 25 rows
    assert list(pd.read_csv(local / "test.csv").columns) == [
        "id",
        "date",
        "store_nbr",
        "family",
        "onpromotion",
    ]
    rebuilt = build_dataset(local, DataConfig())
    pd.testing.assert_frame_equal(rebuilt.sales, sales)
    assert test is not None
    assert rebuilt.test is not None
    assert rebuilt.test["id"].tolist() == test["id"].tolist()


def test_download_is_cached(s3: Any, bucket: str, tmp_path: Path, tiny_kaggle: Any) -> None:
    upload_dataset(tiny_kaggle.write(), bucket=bucket, prefix="p", client=s3)
    first = download_dataset(f"s3://{bucket}/p", tmp_path / "cache", client=s3)
    sends: list[str] = []
    s3.meta.events.register("before-send.s3", lambda request, **_: sends.append(request.url))
    second = download_dataset(f"s3://{bucket}/p/data", tmp_path / "cache", client=s3)
    assert first == second
    assert sends == [f"{s3.meta.endpoint_url}/{bucket}/p/data/manifest.json"]  # the marker only


def test_p22_half_upload_is_invisible(
    s3: Any, bucket: str, tmp_path: Path, tiny_kaggle: Any
) -> None:
    raw = tiny_kaggle.write()
    upload_dataset(raw, bucket=bucket, prefix="p", client=s3)  # a complete older upload

    def crash_after_first_file(http_response: AWSResponse, **_: Any) -> None:
        if http_response.url.endswith(".csv"):
            raise ConnectionAbortedError("killed during the upload")

    s3.meta.events.register("after-call.s3.PutObject", crash_after_first_file)
    tiny_kaggle.train[0] = tiny_kaggle.train[0].replace(".0,", "5.0,", 1)
    with pytest.raises(ConnectionAbortedError):
        upload_dataset(tiny_kaggle.write("changed"), bucket=bucket, prefix="p", client=s3)

    with pytest.raises(MissingInputError, match="did not finish"):
        download_dataset(f"s3://{bucket}/p", tmp_path / "cache", client=s3)


def test_missing_train_refused_before_any_send(s3: Any, bucket: str, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    sends: list[str] = []
    s3.meta.events.register("before-send.s3", lambda request, **_: sends.append(request.method))
    with pytest.raises(MissingInputError, match=r"no train\.csv"):
        upload_dataset(tmp_path / "empty", bucket=bucket, prefix="p", client=s3)
    assert sends == []
