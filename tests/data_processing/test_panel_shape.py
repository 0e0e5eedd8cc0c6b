"""`data validate` reports gaps and closures, and refuses a panel that is not daily."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from retail_forecast.cli import app
from retail_forecast.config import DataConfig
from retail_forecast.data_processing.dataset import build_dataset
from retail_forecast.data_processing.synthetic import SyntheticConfig, write_dataset
from retail_forecast.errors import DataValidationError

SIZE = {"n_stores": 5, "n_families": 3, "n_days": 400, "seed": 1}


def _write(directory: Path, **shape: object) -> Path:
    write_dataset(directory, SyntheticConfig(**(SIZE | shape)))  # type: ignore[arg-type]
    return directory


def _validate_json(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.setenv("RF_LOG_DIR", str(tmp_path / "logs"))
    result = CliRunner().invoke(app, ["data", "validate", "--data-dir", str(data_dir), "--json"])
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def test_p36_gaps_are_reported_with_the_longest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = _write(tmp_path / "gaps", gap_stores=2)
    train = pd.read_csv(data_dir / "train.csv", parse_dates=["date"])
    calendar = pd.DatetimeIndex(sorted(train["date"].unique()))
    holes = {
        store: calendar.difference(pd.DatetimeIndex(rows["date"].unique()))
        for store, rows in train.groupby("store_nbr")
    }
    holes = {store: days for store, days in holes.items() if len(days)}
    assert len(holes) == 2
    report = _validate_json(data_dir, tmp_path, monkeypatch)
    gaps = report["gaps"]
    assert gaps["series"] == 2 * SIZE["n_families"]
    assert gaps["missing_days"] == sum(len(d) for d in holes.values()) * SIZE["n_families"]
    longest = gaps["longest"]
    days = holes[longest["store_nbr"]]
    assert (longest["first_missing"], longest["last_missing"]) == (
        str(days.min().date()),
        str(days.max().date()),
    )
    assert longest["days"] >= 120
    assert report["usable"] is True


def test_p36_plain_data_has_no_gap_and_its_chain_wide_closed_day(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = _validate_json(_write(tmp_path / "plain"), tmp_path, monkeypatch)
    assert report["gaps"] == {"series": 0, "missing_days": 0, "longest": None}
    closures = report["closures"]
    # the generated chain has no row on 25 December: closed chain-wide, once (not yet yearly)
    assert closures["chain_closed_dates"] == ["2016-12-25"]
    assert closures["chain_closed_days"] == 1
    assert closures["yearly"] == []
    assert closures["open_flag"] is False
    assert closures["holidays_closed_rows"] == 0
    assert closures["closed_store_days"] == SIZE["n_stores"]


def test_p36_open_flag_closures_are_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = _write(tmp_path / "sundays", closed_sundays=True)
    train = pd.read_csv(data_dir / "train.csv", parse_dates=["date"])
    test = pd.read_csv(data_dir / "test.csv")
    closures = _validate_json(data_dir, tmp_path, monkeypatch)["closures"]
    sundays = train["date"].dt.dayofweek == 6
    assert closures["open_flag"] is True
    assert closures["open_flag_closed_rows"] == int(sundays.sum()) > 0
    assert closures["open_flag_closed_dates"] == train.loc[sundays, "date"].nunique()
    assert closures["test_closed_rows"] == int((test["open"] == 0).sum()) > 0


def test_p36_holiday_closures_explain_missing_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = _write(tmp_path / "regional", regional_holidays=True, n_days=730)
    train = pd.read_csv(data_dir / "train.csv")
    n_series = SIZE["n_stores"] * SIZE["n_families"]
    assert len(train) < n_series * 730  # closed store-days have no row
    report = _validate_json(data_dir, tmp_path, monkeypatch)
    assert report["closures"]["holidays_closed_rows"] > 0
    missing_store_days = (n_series * 730 - len(train)) // SIZE["n_families"]
    # 25 December twice (2015, 2016) for every store, and the Closed rows' store-days
    assert report["closures"]["closed_store_days"] == 2 * SIZE["n_stores"] + missing_store_days
    assert report["gaps"]["series"] == 0  # every missing day is a known closure


def test_p36_summary_table_shows_gaps_and_closures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RF_LOG_DIR", str(tmp_path / "logs"))
    data_dir = _write(tmp_path / "gaps", gap_stores=1)
    result = CliRunner().invoke(app, ["data", "validate", "--data-dir", str(data_dir)])
    text = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    assert "gaps" in text
    assert "3 series" in text
    assert "closures" in text


def _weekly(tmp_path: Path) -> Path:
    data_dir = _write(tmp_path / "weekly")
    train = pd.read_csv(data_dir / "train.csv")
    mondays = pd.to_datetime(train["date"]).dt.dayofweek == 0
    train[mondays].to_csv(data_dir / "train.csv", index=False)
    (data_dir / "test.csv").unlink()
    return data_dir


def test_p36_weekly_panel_is_refused_before_any_filling(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match=r"7 days apart in 100% of series: a weekly"):
        build_dataset(_weekly(tmp_path), DataConfig(), strict=False)


def test_p36_weekly_panel_validate_and_import_say_the_frequency_and_write_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = _weekly(tmp_path)
    monkeypatch.setenv("RF_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("RF_DATA__PROCESSED_DIR", str(tmp_path / "processed"))
    monkeypatch.setenv("RF_DATA__QUARANTINE_DIR", str(tmp_path / "quarantine"))
    runner = CliRunner()
    result = runner.invoke(app, ["data", "validate", "--data-dir", str(data_dir), "--json"])
    assert result.exit_code == 2
    body = json.loads(result.stdout)
    assert body["usable"] is False
    assert "7 days apart" in body["errors"][0]
    assert "daily" in body["errors"][0]
    result = runner.invoke(app, ["data", "import", "--data-dir", str(data_dir)])
    assert result.exit_code == 2
    assert "weekly panel" in " ".join(result.output.split())
    assert not (tmp_path / "processed").exists()
    assert not (tmp_path / "quarantine").exists()


def test_p36_sparse_rows_on_most_days_are_still_daily(tmp_path: Path) -> None:
    data_dir = _write(tmp_path / "sparse")
    train = pd.read_csv(data_dir / "train.csv")
    train.drop(index=train.index[::7]).to_csv(data_dir / "train.csv", index=False)
    built = build_dataset(data_dir, DataConfig(), strict=False)
    assert built.report.gaps["series"] == SIZE["n_stores"] * SIZE["n_families"]
    # the filled days at a series' first or last day are outside its history: not gaps
    edges = built.report.filled_open_rows - built.report.gaps["missing_days"]
    assert 0 <= edges <= 2 * built.report.gaps["series"]
