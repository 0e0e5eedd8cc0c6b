"""A daily panel in the user's own layout, read through a profile's [data.files]/[data.columns].

A Rossmann-like file (Date, Store, Sales, Promo, Open; day-first dates; one key level; no stores
table) is validated, imported to the canonical frame and backtested through the CLI; bad
mappings fail in one line naming the setting, the column and what the file holds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from retail_forecast.cli import app
from retail_forecast.config import DataConfig
from retail_forecast.data_processing.dataset import build_dataset
from retail_forecast.errors import ConfigError
from retail_forecast.pipeline.data_import import load_processed, run_id_for
from retail_forecast.schema import CANONICAL_COLUMNS, FAMILY, STORE, TARGET

PROFILE = """\
[data.files]
sales = "sales.csv"

[data.columns]
date = "Date"
date_format = "%d.%m.%Y"
store = "Store"
sales = "Sales"
promotion = "Promo"
open = "Open"

[forecast]
horizon = 7

[xgboost]
train_days = 120
exclude_ranges = [["2023-02-01", "2023-02-05"]]
n_estimators = 5
nthread = 1

[lstm]
epochs = 1
windows_per_epoch = 64
window = 14

[backtest]
folds = 1
"""


def _panel(n_stores: int = 3, n_days: int = 150, seed: int = 0) -> pd.DataFrame:
    """Daily sales of a few stores, closed on Sundays (Open 0, Sales 0), with promotions."""
    rng = np.random.default_rng(seed)
    days = pd.date_range("2023-01-01", periods=n_days, freq="D")
    rows = []
    for store in range(1, n_stores + 1):
        level = 100.0 * store
        for day in days:
            is_open = int(day.dayofweek != 6)
            promo = int(rng.random() < 0.3)
            sales = round(level * (1 + 0.3 * promo) * rng.uniform(0.8, 1.2), 2) * is_open
            rows.append((day.strftime("%d.%m.%Y"), store, sales, promo, is_open, "BY"))
    return pd.DataFrame(rows, columns=["Date", "Store", "Sales", "Promo", "Open", "State"])


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # no .env from the checkout
    monkeypatch.setenv("RF_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("RF_DATA__QUARANTINE_DIR", str(tmp_path / "quarantine"))
    monkeypatch.setenv("RF_DATA__PROCESSED_DIR", str(tmp_path / "processed"))
    for name in ("RF_BACKTEST__FOLDS", "RF_DATA__DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.fixture
def own_layout(workdir: Path) -> Path:
    out = workdir / "chain"
    out.mkdir()
    _panel().to_csv(out / "sales.csv", index=False)
    (workdir / "my.toml").write_text(PROFILE)
    return out


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, " ".join(result.output.split())


def _json(*args: str) -> dict[str, object]:
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    answer: dict[str, object] = json.loads(result.stdout)
    return answer


def test_p35_own_layout_validates_imports_to_the_canonical_frame_and_backtests(
    workdir: Path, own_layout: Path
) -> None:
    config = ("--data-dir", str(own_layout), "--config", str(workdir / "my.toml"))
    report = _json("data", "validate", *config)
    assert report["series"] == 3
    assert (report["first_date"], report["last_date"]) == ("2023-01-01", "2023-05-30")

    code, output = _cli("data", "import", *config)
    assert code == 0, output
    sales, _ = load_processed(workdir / "processed")
    assert tuple(sales.columns) == CANONICAL_COLUMNS
    assert sorted(sales[STORE].unique()) == [1, 2, 3]
    assert set(sales[FAMILY]) == {"ALL"}  # one key level: one family
    source = _panel()
    source["date"] = pd.to_datetime(source["Date"], format="%d.%m.%Y")
    merged = sales.merge(source, left_on=["date", STORE], right_on=["date", "Store"])
    assert len(merged) == len(source) == len(sales)
    np.testing.assert_allclose(merged[TARGET], merged["Sales"])
    assert (merged["onpromotion"] == merged["Promo"]).all()
    assert (merged["is_closed"] == (merged["Open"] == 0)).all()

    folds = _json("backtest", *config)["folds"]
    assert isinstance(folds, list)
    assert len(folds) == 1


def test_p35_two_key_levels_and_a_glob_of_files(tmp_path: Path) -> None:
    one = _panel(n_stores=2, n_days=60)
    panel = pd.concat([one.assign(Item=10), one.assign(Item=11)], ignore_index=True)
    dates = pd.to_datetime(panel["Date"], format="%d.%m.%Y")
    panel[dates < "2023-02-01"].to_csv(tmp_path / "sales_1.csv", index=False)
    panel[dates >= "2023-02-01"].to_csv(tmp_path / "sales_2.csv", index=False)
    config = DataConfig(
        files={"sales": "sales_*.csv"},
        columns={
            "date": "Date",
            "date_format": "%d.%m.%Y",
            "store": "Store",
            "item": "Item",  # the second level: item ids, read as category text
            "sales": "Sales",
            "promotion": "Promo",
            "open": "Open",
        },
    )
    built = build_dataset(tmp_path, config, strict=False)
    assert built.report.rows_read == len(panel)
    assert set(built.sales[FAMILY]) == {"10", "11"}
    assert built.report.series == 4


def test_p35_no_mapping_keeps_the_kaggle_layout_and_its_run_id(tmp_path: Path) -> None:
    mapped = DataConfig(files={"sales": "train.csv"})
    assert DataConfig().model_dump_json() == DataConfig(columns={}, files={}).model_dump_json()
    assert "columns" not in DataConfig().model_dump_json()  # the import's run id as before
    assert run_id_for(tmp_path, DataConfig()) != run_id_for(tmp_path, mapped)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            ('date = "Date"', 'date = "day"'),
            'data.columns.date = "day": column "day" not in sales.csv; '
            "found: Date, Store, Sales, Promo, Open, State",
        ),
        (
            ('sales = "Sales"', 'sales = "State"'),
            'data.columns.sales = "State": column "State" in sales.csv must hold numbers; '
            'found 100% of values that are not, e.g. "BY"',
        ),
        (
            ('sales = "Sales"', 'sales = "Date"'),
            'data.columns.sales = "Date": data.columns.date names that column too',
        ),
        (
            ('store = "Store"', 'shop = "Store"'),
            "unknown key data.columns.shop; [data.columns] allows: date, date_format, item, "
            "open, promotion, sales, store",
        ),
        (
            ('date_format = "%d.%m.%Y"\n', ""),
            'data.columns.date = "Date": column "Date" in sales.csv holds no ISO dates',
        ),
        (
            ('sales = "sales.csv"', 'sales = "weekly.csv"'),
            'data.files.sales = "weekly.csv": no file matches in',
        ),
    ],
)
def test_p35_a_bad_mapping_fails_in_one_line_naming_key_column_and_what_was_found(
    workdir: Path, own_layout: Path, edit: tuple[str, str], message: str
) -> None:
    (workdir / "my.toml").write_text(PROFILE.replace(*edit))
    args = ("--data-dir", str(own_layout), "--config", str(workdir / "my.toml"))
    for command in (("data", "validate"), ("data", "import")):
        code, output = _cli(*command, *args)
        assert code != 0
        assert message in output, output
        assert "Traceback" not in output


def test_p35_a_mapped_column_of_text_is_a_config_error(tmp_path: Path) -> None:
    panel = _panel(n_days=20)
    panel["Store"] = "S" + panel["Store"].astype(str)
    panel.to_csv(tmp_path / "sales.csv", index=False)
    config = DataConfig(
        files={"sales": "sales.csv"},
        columns={"date": "Date", "date_format": "%d.%m.%Y", "store": "Store", "sales": "Sales"},
    )
    with pytest.raises(ConfigError, match=r'data.columns.store = "Store".*must hold integers'):
        build_dataset(tmp_path, config)
