"""The generator's panel shapes: each generates what it claims; the default is unchanged."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from retail_forecast.cli import app
from retail_forecast.data_processing.synthetic import (
    FRAME_NAMES,
    SyntheticConfig,
    default_config,
    generate_frames,
    shaped_config,
    write_dataset,
)
from retail_forecast.data_processing.synthetic_shapes import SHAPES

SIZE = {"n_stores": 6, "n_families": 4, "n_days": 500, "seed": 2}
# sha256 of the default data set's files (`data generate` with no option), as written before
# the shapes existed: the default must stay byte-identical.
DEFAULT_SHA256 = {
    "train.csv": "a29e0ea4f37483001e991a3dd17d8ce3dd101775c0ba319b2c7f9890b1fe3606",
    "test.csv": "7f5d19b14e3486982db25fd590248368ffa914c939316b75bc153caba8ce581a",
    "stores.csv": "a85b0afa6143b366f26a22da91200fe67cc67a4c0eed48835fe80b4163c7b359",
    "oil.csv": "e09b128d9efd3505e71e75814fde0669b2c60723ed12ba87d59f54d43e852aea",
    "holidays_events.csv": "5a786248c38c91c1140614d630b8eca9528dc8c797da469453ca24c59ba8230d",
    "transactions.csv": "7228a3856552cabc0020c71f156e041e494ee99922df3a27325685b1ede51198",
    "synthetic_config.json": "17105ddd04f92d63bbe317932f03278c0378305c92054476689797af523a63fc",
}


def _frames(**shape: object) -> dict[str, pd.DataFrame]:
    frames = generate_frames(SyntheticConfig(**(SIZE | shape)))  # type: ignore[arg-type]
    for name in ("train", "test", "transactions", "holidays_events"):
        frames[name] = frames[name].assign(date=pd.to_datetime(frames[name]["date"]))
    return frames


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_p36_default_files_are_byte_identical_to_before_the_shapes(tmp_path: Path) -> None:
    paths = write_dataset(tmp_path, default_config())
    got = {name: _sha256(tmp_path / name) for name in DEFAULT_SHA256}
    assert got == DEFAULT_SHA256
    assert set(paths) == {*FRAME_NAMES, "config"}


def test_p36_favorita_like_preset_is_the_default() -> None:
    assert shaped_config("favorita-like", seed=4) == default_config(seed=4)
    assert shaped_config("favorita-like", full=True) == default_config(full=True)


def test_p36_closed_sundays_are_open_0_rows_without_sales() -> None:
    frames = _frames(closed_sundays=True)
    train, test = frames["train"], frames["test"]
    assert list(train.columns)[-1] == "open"
    assert list(test.columns)[-1] == "open"
    sunday = train["date"].dt.dayofweek == 6
    assert sunday.any()
    assert (train.loc[sunday, "open"] == 0).all()
    assert (train.loc[sunday, ["sales", "onpromotion"]] == 0).all().all()
    assert (train.loc[~sunday, "open"] == 1).all()
    assert train.loc[~sunday, "sales"].sum() > 0
    assert (test["open"] == (test["date"].dt.dayofweek != 6)).all()
    tickets = frames["transactions"]
    assert not (tickets["date"].dt.dayofweek == 6).any()


def test_p36_regional_holidays_lift_their_stores_and_close_a_day() -> None:
    plain, frames = _frames(), _frames(regional_holidays=True)
    holidays, stores, train = frames["holidays_events"], frames["stores"], frames["train"]
    local = holidays[holidays["locale"].isin(["Regional", "Local"])]
    assert len(local) > 2 * (plain["holidays_events"]["locale"] != "National").sum()
    closed = holidays[holidays["type"] == "Closed"]
    assert set(closed["locale"]) == {"Regional"}
    in_range = closed[closed["date"].between(train["date"].min(), train["date"].max())]
    assert len(in_range) > 0
    for row in in_range.itertuples():
        shut = stores.loc[stores["state"] == row.locale_name, "store_nbr"]
        day = train[train["date"] == row.date]
        assert not day["store_nbr"].isin(shut).any()  # no row: closed, as 25 December
        assert len(day) > 0 or len(shut) == len(stores)
    festive = local[(local["type"] == "Holiday") & local["description"].str.startswith("Fiesta")]
    lifts = []
    for row in festive[festive["locale"] == "Regional"].itertuples():
        hit = stores.loc[stores["state"] == row.locale_name, "store_nbr"]
        rows = train[train["store_nbr"].isin(hit)]
        week = rows[(rows["date"] - row.date).dt.days.abs().isin([7, 14])]
        on = rows[rows["date"] == row.date]
        if len(on) and week["sales"].sum() > 0:
            lifts.append(on["sales"].sum() / (week["sales"].sum() / week["date"].nunique()))
    assert len(lifts) >= 5
    assert np.median(lifts) > 1.15


def test_p36_gap_stores_have_months_without_any_row() -> None:
    frames = _frames(gap_stores=2)
    train, tickets = frames["train"], frames["transactions"]
    calendar = pd.DatetimeIndex(sorted(train["date"].unique()))
    gapped = []
    for store, rows in train.groupby("store_nbr"):
        missing = calendar.difference(pd.DatetimeIndex(rows["date"].unique()))
        if len(missing):
            gapped.append(store)
            assert len(missing) == 120 * 1  # one gap of 120 train days, every family
            assert (rows.groupby("family").size() == len(calendar) - 120).all()
            assert (missing.max() - missing.min()).days < 130  # one span, not scattered
            assert not tickets[tickets["store_nbr"] == store]["date"].isin(missing).any()
            assert rows["date"].min() < missing.min()
            assert rows["date"].max() > missing.max()
    assert len(gapped) == 2
    assert 1 not in gapped
    assert train["id"].tolist() == list(range(len(train)))
    assert frames["test"]["id"].iloc[0] == len(train)


def test_p36_one_family_recent_years_and_horizon() -> None:
    one = generate_frames(shaped_config("one-family", **SIZE | {"n_families": 33}))
    assert set(one["train"]["family"]) == {"GROCERY I"} == set(one["test"]["family"])
    recent = shaped_config("recent-years", seed=1, n_stores=2, n_families=2)
    train = generate_frames(recent)["train"]
    assert train["date"].min() == "2019-01-01"
    assert "2019-01-01" <= train["date"].max() <= "2022-12-31"
    test = _frames(horizon=28)["test"]
    assert test["date"].nunique() == 28
    assert (test["date"].min() - pd.Timestamp("2017-08-15")).days == 1


@pytest.mark.parametrize("shape", list(SHAPES))
def test_p36_every_shape_builds(shape: str) -> None:
    config = shaped_config(shape, n_stores=3, n_families=2, n_days=200)
    frames = generate_frames(config)
    assert len(frames["train"]) > 0
    assert frames["test"]["date"].nunique() == config.horizon


def test_p36_cli_shape_and_options_write_what_they_say(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RF_LOG_DIR", str(tmp_path / "logs"))
    out = tmp_path / "data"
    args = ["data", "generate", "--out", str(out), "--shape", "closed-sundays", "--stores", "3"]
    args += ["--families", "2", "--days", "100", "--horizon", "28", "--start", "2020-03-01"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    train, test = pd.read_csv(out / "train.csv"), pd.read_csv(out / "test.csv")
    assert "open" in train.columns
    assert train["date"].min() == "2020-03-01"
    assert len(train) == 3 * 2 * 100
    assert test["date"].nunique() == 28
    assert dt.date.fromisoformat(test["date"].min()) == dt.date(2020, 6, 9)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--shape", "weekly"], "closed-sundays, regional, gaps"),
        (["--families", "40"], "--families"),
        (["--start", "2019-13-01"], "--start"),
        (["--gap-stores", "-1"], "--gap-stores"),
    ],
)
def test_p36_cli_bad_options_name_the_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], needle: str
) -> None:
    monkeypatch.setenv("RF_LOG_DIR", str(tmp_path / "logs"))
    result = CliRunner().invoke(app, ["data", "generate", "--out", str(tmp_path / "d"), *args])
    assert result.exit_code == 2
    assert needle in " ".join(result.output.split())
    assert not (tmp_path / "d").exists()


def test_p36_cli_help_documents_the_closure_layout() -> None:
    result = CliRunner().invoke(app, ["data", "generate", "--help"])
    text = " ".join(result.output.split())
    for needle in ("--closed-sundays", "--regional-holidays", "--gap-stores", "--shape"):
        assert needle in text
    assert '"open" column' in text
    assert '"Closed"' in text
