"""The synthetic generator: Kaggle layout, determinism, and the realism it promises."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from retail_forecast.cli import app
from retail_forecast.data_processing.synthetic import (
    FRAME_NAMES,
    SyntheticConfig,
    default_config,
    generate_frames,
    train_dates,
    write_dataset,
)
from retail_forecast.data_processing.synthetic_tables import FAMILY_TABLE

KAGGLE_COLUMNS = {
    "train": ["id", "date", "store_nbr", "family", "sales", "onpromotion"],
    "test": ["id", "date", "store_nbr", "family", "onpromotion"],
    "stores": ["store_nbr", "city", "state", "type", "cluster"],
    "oil": ["date", "dcoilwtico"],
    "holidays_events": ["date", "type", "locale", "locale_name", "description", "transferred"],
    "transactions": ["date", "store_nbr", "transactions"],
}
KAGGLE_DTYPES = {
    "train": ["int64", "object", "int64", "object", "float64", "int64"],
    "test": ["int64", "object", "int64", "object", "int64"],
    "stores": ["int64", "object", "object", "object", "int64"],
    "oil": ["object", "float64"],
    "holidays_events": ["object", "object", "object", "object", "object", "bool"],
    "transactions": ["object", "int64", "int64"],
}
SMALL = SyntheticConfig(n_stores=3, n_families=5, n_days=120, seed=0)


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    """The default size (10 stores x 33 families x 730 days), generated once."""
    return generate_frames(default_config())


@pytest.fixture(scope="module")
def train(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    out = frames["train"].copy()
    out["date"] = pd.to_datetime(out["date"])
    return out


def _read_back(directory: Path, name: str, nrows: int | None = None) -> pd.DataFrame:
    return pd.read_csv(directory / f"{name}.csv", nrows=nrows)


def test_same_seed_writes_identical_bytes(tmp_path: Path) -> None:
    first = write_dataset(tmp_path / "a", SMALL)
    second = write_dataset(tmp_path / "b", SMALL)
    assert set(first) == {*FRAME_NAMES, "config"}
    for name, path in first.items():
        assert path.read_bytes() == second[name].read_bytes(), name


def test_different_seed_gives_different_data(tmp_path: Path) -> None:
    first = write_dataset(tmp_path / "a", SMALL)
    second = write_dataset(tmp_path / "b", SMALL.model_copy(update={"seed": 1}))
    for name in ("train", "test", "oil", "transactions"):
        assert first[name].read_bytes() != second[name].read_bytes(), name


def test_written_files_have_kaggle_columns_and_dtypes(tmp_path: Path) -> None:
    paths = write_dataset(tmp_path, SMALL)
    for name in FRAME_NAMES:
        assert paths[name].name == f"{name}.csv"
        back = _read_back(tmp_path, name)
        assert list(back.columns) == KAGGLE_COLUMNS[name], name
        assert [str(t) for t in back.dtypes] == KAGGLE_DTYPES[name], name


def test_frames_have_the_dtypes_read_csv_gives(tmp_path: Path) -> None:
    write_dataset(tmp_path, SMALL)
    for name, frame in generate_frames(SMALL).items():
        back = _read_back(tmp_path, name)
        pd.testing.assert_frame_equal(frame.reset_index(drop=True), back, check_exact=True)


@pytest.mark.data
def test_layout_equals_the_real_files(favorita_dir: Path, tmp_path: Path) -> None:
    write_dataset(tmp_path, SMALL)
    for name in FRAME_NAMES:
        if name == "train":
            real = pd.read_parquet(favorita_dir / "train_parts" / "df_train_part_0.parquet")
        else:
            real = pd.read_csv(favorita_dir / f"{name}.csv", nrows=200)
        ours = _read_back(tmp_path, name, nrows=200)
        assert list(ours.columns) == list(real.columns), name
        assert list(ours.dtypes) == list(real.dtypes), name
    real_header = (favorita_dir / "test.csv").read_text().splitlines()[0]
    assert (tmp_path / "test.csv").read_text().splitlines()[0] == real_header


def test_rows_are_ordered_like_the_original() -> None:
    train = generate_frames(SyntheticConfig(n_stores=12, n_families=3, n_days=5))["train"]
    assert train["id"].tolist() == list(range(len(train)))
    first_day = train[train["date"] == train["date"].iloc[0]]
    stores = first_day["store_nbr"].drop_duplicates().tolist()
    assert stores == [1, 10, 11, 12, 2, 3, 4, 5, 6, 7, 8, 9]  # store_nbr as text
    assert first_day["family"].tolist()[:3] == ["AUTOMOTIVE", "BABY CARE", "BEAUTY"]
    assert train["date"].is_monotonic_increasing


def test_december_25_is_missing_and_no_other_day(train: pd.DataFrame) -> None:
    dates = pd.DatetimeIndex(train["date"].unique())
    assert len(dates) == 730
    assert not ((dates.month == 12) & (dates.day == 25)).any()
    calendar = pd.date_range(dates[0], dates[-1])
    missing = calendar.difference(dates)
    assert list(missing) == [pd.Timestamp("2015-12-25"), pd.Timestamp("2016-12-25")]


def test_test_covers_16_days_of_every_series_with_continuing_ids(
    frames: dict[str, pd.DataFrame],
) -> None:
    train, test = frames["train"], frames["test"]
    assert test["id"].tolist() == list(range(len(train), len(train) + len(test)))
    days = pd.to_datetime(test["date"].unique())
    expected = pd.date_range("2017-08-16", periods=16)
    assert list(days) == list(expected)
    series = set(train[["store_nbr", "family"]].itertuples(index=False, name=None))
    per_day = test.groupby("date")[["store_nbr", "family"]]
    for _, rows in per_day:
        assert set(rows.itertuples(index=False, name=None)) == series
    assert len(test) == 16 * len(series)


def test_zero_series_exist_with_no_promotions(train: pd.DataFrame) -> None:
    totals = train.groupby(["store_nbr", "family"])[["sales", "onpromotion"]].sum()
    zero = totals[totals["sales"] == 0]
    assert 0.01 <= len(zero) / len(totals) <= 0.06
    assert (zero["onpromotion"] == 0).all()


def test_dead_series_stop_weeks_before_the_end(train: pd.DataFrame) -> None:
    # A series that sold on most days of the quarter before its last sale, then never again.
    last_sale = train[train["sales"] > 0].groupby(["store_nbr", "family"])["date"].max()
    stopped = last_sale[last_sale < pd.Timestamp("2017-08-15") - pd.Timedelta(days=21)]
    rows = train.set_index(["store_nbr", "family"]).loc[stopped.index].reset_index()
    rows = rows.merge(stopped.rename("last").reset_index(), on=["store_nbr", "family"])
    window = rows[
        (rows["date"] <= rows["last"]) & (rows["date"] > rows["last"] - pd.Timedelta(days=90))
    ]
    sold_share = window.assign(sold=window["sales"] > 0).groupby(["store_nbr", "family"])["sold"]
    dead = sold_share.mean()[lambda share: share > 0.9]
    assert len(dead) >= 2
    assert (stopped[dead.index] > pd.Timestamp("2017-05-01")).all()


def test_late_opening_store_has_zeros_before_opening(
    frames: dict[str, pd.DataFrame], train: pd.DataFrame
) -> None:
    opening = train[train["sales"] > 0].groupby("store_nbr")["date"].min()
    late = opening[opening > train["date"].min() + pd.Timedelta(days=60)]
    assert len(late) >= 1
    tickets = frames["transactions"].assign(date=lambda f: pd.to_datetime(f["date"]))
    for store, day in late.items():
        rows = train[train["store_nbr"] == store]
        before, after = rows[rows["date"] < day], rows[rows["date"] >= day]
        assert len(before) > 0
        assert (before["sales"] == 0).all()
        assert (before["onpromotion"] == 0).all()
        assert (after.groupby("family", observed=True)["sales"].sum() > 0).mean() > 0.8
        store_tickets = tickets[tickets["store_nbr"] == store]
        assert store_tickets["date"].min() == day


def test_promotions_lift_sales_in_each_family(train: pd.DataFrame) -> None:
    rows = train[train["date"] >= pd.Timestamp("2014-04-01")]
    rows = rows.assign(on=rows["onpromotion"] > 0)
    grouped = rows.groupby(["family", "store_nbr", "on"])["sales"]
    means, counts = grouped.mean().unstack("on"), grouped.size().unstack("on", fill_value=0)
    means = means[(counts.min(axis=1) >= 30) & (means[False] > 0)]
    checked = 0
    for family, per_store in means.groupby(level="family"):
        if len(per_store) < 5:
            continue
        checked += 1
        # mean sales with promotion > without, in the same series, for most stores of the family
        assert (per_store[True] > per_store[False]).mean() > 0.5, family
        assert per_store[True].sum() > 1.05 * per_store[False].sum(), family
    assert checked >= 20


def test_weekly_seasonality_and_paydays(train: pd.DataFrame) -> None:
    total = train.groupby("date")["sales"].sum()
    by_day = total.groupby(total.index.dayofweek).mean()
    assert by_day[[5, 6]].min() > 1.15 * by_day[[1, 2, 3]].max()
    ratio = total / total.rolling(7, center=True).mean()
    is_payday = (total.index.day == 15) | total.index.is_month_end
    assert ratio[is_payday].mean() > ratio[~is_payday].mean() + 0.03


def test_christmas_eve_sells_more_than_early_december(train: pd.DataFrame) -> None:
    total = train.groupby("date")["sales"].sum()
    for year in (2015, 2016):
        eve = total[pd.Timestamp(f"{year}-12-23")]
        assert eve > 1.2 * total[f"{year}-12-01" : f"{year}-12-07"].mean()


def test_earthquake_lifts_some_families_in_its_region(
    frames: dict[str, pd.DataFrame], train: pd.DataFrame
) -> None:
    holidays = frames["holidays_events"]
    quake = holidays[holidays["description"].str.match(r"^Terremoto [^+]+$")]
    assert len(quake) == 1
    day = pd.Timestamp(quake["date"].iloc[0])
    state = quake["description"].iloc[0].removeprefix("Terremoto ")
    stores = frames["stores"].loc[frames["stores"]["state"] == state, "store_nbr"]
    rows = train[train["store_nbr"].isin(stores) & (train["family"] == "GROCERY I")]
    daily = rows.groupby("date")["sales"].sum()
    after = daily[day : day + pd.Timedelta(days=6)].mean()
    before = daily[day - pd.Timedelta(days=14) : day - pd.Timedelta(days=1)].mean()
    assert after > 1.25 * before


def test_holidays_file_has_the_real_kinds_of_rows(frames: dict[str, pd.DataFrame]) -> None:
    holidays = frames["holidays_events"]
    kinds = set(holidays["type"])
    assert {"Holiday", "Transfer", "Additional", "Bridge", "Work Day", "Event"} <= kinds
    assert set(holidays["locale"]) == {"National", "Regional", "Local"}
    assert holidays["transferred"].any()
    assert (holidays["description"] == "Navidad").sum() >= 2
    assert pd.to_datetime(holidays["date"]).is_monotonic_increasing


def test_weighed_families_are_fractional_and_counted_ones_integers(train: pd.DataFrame) -> None:
    def fraction(family: str) -> float:
        sales = train.loc[train["family"] == family, "sales"]
        return float((sales % 1 != 0).mean())

    assert fraction("PRODUCE") > 0.5
    assert fraction("POULTRY") > 0.5
    assert fraction("GROCERY I") == 0.0
    assert fraction("BEVERAGES") == 0.0


def test_family_levels_span_the_real_range(train: pd.DataFrame) -> None:
    means = train.groupby("family")["sales"].mean()
    assert means.max() > 2000
    assert means.min() < 1
    assert train["sales"].min() == 0


@pytest.mark.parametrize(
    ("n_stores", "n_families", "n_days"), [(2, 3, 60), (1, 1, 1), (13, 33, 20), (4, 7, 400)]
)
def test_sizes_are_configurable(n_stores: int, n_families: int, n_days: int) -> None:
    config = SyntheticConfig(n_stores=n_stores, n_families=n_families, n_days=n_days, seed=0)
    frames = generate_frames(config)
    train = frames["train"]
    assert len(train) == n_stores * n_families * n_days
    assert train["date"].nunique() == n_days
    assert train["date"].max() == "2017-08-15"
    assert sorted(train["store_nbr"].unique()) == list(range(1, n_stores + 1))
    assert sorted(train["family"].unique()) == sorted(FAMILY_TABLE)[:n_families]
    assert len(frames["stores"]) == n_stores
    assert len(frames["test"]) == 16 * n_stores * n_families
    assert np.isfinite(train["sales"]).all()
    assert (train["sales"] >= 0).all()


def test_end_date_is_configurable() -> None:
    config = SyntheticConfig(n_stores=1, n_families=2, n_days=30, end_date=dt.date(2016, 12, 31))
    train = generate_frames(config)["train"]
    assert train["date"].max() == "2016-12-31"
    assert "2016-12-25" not in set(train["date"])


def test_full_config_has_the_real_data_size() -> None:
    config = default_config(full=True, seed=7)
    dates = train_dates(config)
    assert (config.n_stores, config.n_families, config.seed) == (54, 33, 7)
    assert len(dates) == 1684
    assert (dates[0], dates[-1]) == (pd.Timestamp("2013-01-01"), pd.Timestamp("2017-08-15"))
    assert config.n_stores * config.n_families * len(dates) == 3_000_888


@pytest.mark.parametrize("bad", [{"n_families": 34}, {"n_stores": 0}, {"n_days": 0}])
def test_config_rejects_impossible_sizes(bad: dict[str, int]) -> None:
    with pytest.raises(ValidationError):
        SyntheticConfig(**bad)  # type: ignore[arg-type]


def test_cli_generate_writes_files_and_prints_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RF_LOG_DIR", str(tmp_path / "logs"))
    out = tmp_path / "data"
    result = CliRunner().invoke(app, ["data", "generate", "--out", str(out), "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.glob("*.csv")} == {f"{name}.csv" for name in FRAME_NAMES}
    assert "240,900" in result.output
    assert "2015-08-15" in result.output
    expected = generate_frames(default_config(seed=3))["test"]
    pd.testing.assert_frame_equal(pd.read_csv(out / "test.csv"), expected)


def test_default_size_is_deterministic(frames: dict[str, pd.DataFrame]) -> None:
    again = generate_frames(default_config())
    for name, frame in frames.items():
        pd.testing.assert_frame_equal(frame, again[name], check_exact=True)


@pytest.mark.slow
def test_full_size_has_the_real_panel_shape() -> None:
    frames = generate_frames(default_config(full=True))
    train, test = frames["train"], frames["test"]
    assert len(train) == 3_000_888
    assert train.groupby("date").size().eq(54 * 33).all()
    assert (train["date"].min(), train["date"].max()) == ("2013-01-01", "2017-08-15")
    assert len(test) == 28_512
    assert test["id"].iloc[0] == 3_000_888


@pytest.mark.integration
def test_generated_data_passes_the_data_layer_without_issues(tmp_path: Path) -> None:
    from retail_forecast.config import DataConfig
    from retail_forecast.data_processing.dataset import build_dataset

    write_dataset(tmp_path, SMALL)
    built = build_dataset(tmp_path, DataConfig(), strict=True)
    assert built.report.errors == []
    assert len(built.quarantine) == 0
    days = pd.date_range("2017-04-18", "2017-08-15")  # 120 train days, no 25 December
    assert len(built.sales) == SMALL.n_stores * SMALL.n_families * len(days)
    assert not built.sales["is_closed"].any()
