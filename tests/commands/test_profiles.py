"""Data-set profiles on the command line: `--config`, the file beside the data, precedence.

Precedence: CLI flags > env (RF_...) > .env > the profile > code defaults (README, Configuration).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from retail_forecast.cli import app
from retail_forecast.commands.common import load_settings
from retail_forecast.commands.modeling import _train_settings
from retail_forecast.data_processing.synthetic import SyntheticConfig, write_dataset

# What the April 2016 earthquake window was as a code default; the generated data's profile
# names its own shock, which on the default data is that window: `run` trains as before.
PREVIOUS_EXCLUDED = (("2016-04-16", "2016-05-31"),)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # no .env from the checkout
    monkeypatch.setenv("RF_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("RF_DATA__QUARANTINE_DIR", str(tmp_path / "quarantine"))
    for name in ("RF_DATA__PROCESSED_DIR", "RF_BACKTEST__FOLDS", "RF_DATA__DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.fixture
def data_dir(workdir: Path) -> Path:
    out = workdir / "kaggle"
    write_dataset(out, SyntheticConfig(n_stores=2, n_families=2, n_days=150, seed=1))
    return out


def _import(*args: str) -> None:
    result = CliRunner().invoke(app, ["data", "import", *args])
    assert result.exit_code == 0, result.output


def test_p35_the_profile_beside_the_data_is_used_env_beats_it_and_config_replaces_it(
    workdir: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (data_dir / "retail_forecast.toml").write_text(
        f'[data]\nprocessed_dir = "{workdir / "from-profile"}"\n'
    )
    _import("--data-dir", str(data_dir))
    assert (workdir / "from-profile" / "sales.parquet").is_file()

    monkeypatch.setenv("RF_DATA__PROCESSED_DIR", str(workdir / "from-env"))
    _import("--data-dir", str(data_dir))
    assert (workdir / "from-env" / "sales.parquet").is_file()

    monkeypatch.delenv("RF_DATA__PROCESSED_DIR")
    other = workdir / "other.toml"
    other.write_text(f'[data]\nprocessed_dir = "{workdir / "from-config"}"\n')
    _import("--data-dir", str(data_dir), "--config", str(other))
    assert (workdir / "from-config" / "sales.parquet").is_file()


@pytest.mark.integration
def test_p35_backtest_flag_beats_env_beats_profile(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (data_dir / "retail_forecast.toml").write_text(
        "[backtest]\nfolds = 3\n[xgboost]\nn_estimators = 5\nnthread = 1\n"
    )

    def folds(*flags: str) -> int:
        args = ["backtest", "--data-dir", str(data_dir), "--json", *flags]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        return len(json.loads(result.stdout)["folds"])

    assert folds() == 3  # the profile
    monkeypatch.setenv("RF_BACKTEST__FOLDS", "2")
    assert folds() == 2  # env over the profile
    assert folds("--folds", "1") == 1  # the flag over both


def test_data_generate_writes_the_profile_that_keeps_the_default_run_as_before(
    workdir: Path,
) -> None:
    result = CliRunner().invoke(app, ["data", "generate", "--out", str(workdir / "gen")])
    assert result.exit_code == 0, result.output
    assert (workdir / "gen" / "retail_forecast.toml").is_file()
    assert load_settings(data_dir=workdir / "gen").xgboost.exclude_ranges == PREVIOUS_EXCLUDED
    assert load_settings().xgboost.exclude_ranges == ()  # no data, no profile: the defaults


def test_the_default_run_generates_its_data_with_its_profile(workdir: Path) -> None:
    settings, chosen = _train_settings(None, None)
    assert Path(chosen) == Path("data/default")
    assert (workdir / "data" / "default" / "retail_forecast.toml").is_file()
    assert settings.xgboost.exclude_ranges == PREVIOUS_EXCLUDED


def test_config_favorita_resolves_to_the_shipped_profile(workdir: Path, data_dir: Path) -> None:
    favorita = load_settings(config="favorita", data_dir=data_dir).xgboost
    assert favorita.train_start == "2015-01-01"
    assert favorita.exclude_ranges == PREVIOUS_EXCLUDED
    args = ["data", "validate", "--data-dir", str(data_dir), "--config", "favorita", "--json"]
    assert CliRunner().invoke(app, args).exit_code == 0


@pytest.mark.parametrize(
    ("config", "profile", "message"),
    [
        ("favorit", None, "--config favorit: no such file, and not a shipped profile (favorita"),
        (None, "[xgboost]\ntrain_begin = 1\n", "unknown key xgboost.train_begin; [xgboost] allows"),
        (None, "[xgboost]\ntrain_days = 0\n", "xgboost.train_days"),
    ],
)
def test_a_bad_profile_fails_in_one_clear_line(
    data_dir: Path, config: str | None, profile: str | None, message: str
) -> None:
    if profile is not None:
        (data_dir / "retail_forecast.toml").write_text(profile)
    args = ["data", "validate", "--data-dir", str(data_dir)]
    result = CliRunner().invoke(app, args + (["--config", config] if config else []))
    assert result.exit_code == 1
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.output


def test_a_generated_profile_names_the_data_sets_own_shock_and_horizon(workdir: Path) -> None:
    from retail_forecast.data_processing.synthetic import train_dates
    from retail_forecast.data_processing.synthetic_profile import shock_period, write_profile

    recent = SyntheticConfig(n_stores=1, n_families=1, n_days=300, horizon=28)
    start, end = shock_period(recent) or pytest.fail("300 days hold a shock")
    dates = train_dates(recent)
    assert dates[0].date() < start < end < dates[-1].date()  # its own, not April 2016
    settings = load_settings(data_dir=write_profile(workdir / "recent", recent).parent)
    assert settings.xgboost.exclude_ranges == ((str(start), str(end)),)
    assert settings.forecast.horizon == 28

    short = SyntheticConfig(n_stores=1, n_families=1, n_days=40)
    assert shock_period(short) is None
    settings = load_settings(data_dir=write_profile(workdir / "short", short).parent)
    assert settings.xgboost.exclude_ranges == ()
    assert settings.forecast.horizon == 16


@pytest.mark.parametrize(
    "command",
    [
        ["serve"],
        ["monitor", "check"],
        ["monitor", "ingest-actuals", "--file", "actuals.csv"],
        ["monitor", "report", "--out", "report.html"],
        ["aws", "upload"],
        ["aws", "deploy", "--dry-run"],
    ],
)
def test_every_command_that_reads_settings_takes_config(workdir: Path, command: list[str]) -> None:
    """A profile given with --config is read (a bad key fails naming it), nothing else runs."""
    profile = workdir / "shop.toml"
    profile.write_text("[api]\nport_number = 1\n")
    result = CliRunner().invoke(app, [*command, "--config", str(profile)])
    assert result.exit_code == 1, result.output
    assert "unknown key api.port_number; [api] allows" in " ".join(result.stderr.split())


def test_monitor_reads_a_batch_with_the_profile_beside_it(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The drift window is read with the data set's own profile (its mapping), as train reads it."""
    profile = data_dir / "retail_forecast.toml"
    profile.write_text('[data.columns]\ndate = "day"\n')
    report = CliRunner().invoke(
        app, ["monitor", "report", "--out", "r.html", "--data-dir", str(data_dir)]
    )
    assert report.exit_code != 0
    assert 'data.columns.date = "day": column "day" not in train.csv' in str(report.exception)
    caplog.clear()
    with caplog.at_level("INFO", logger="retail_forecast.commands.common"):
        CliRunner().invoke(app, ["monitor", "drift", "--data-dir", str(data_dir)])
    assert f"settings profile {profile}" in caplog.messages
