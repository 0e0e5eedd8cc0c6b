"""Settings: every name .env.example offers is a setting; removed names fail, not linger."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from retail_forecast.config import Settings, XGBoostConfig, settings_for
from retail_forecast.errors import ConfigError
from retail_forecast.settings_profile import SHIPPED_PROFILES, resolve_profile

ENV_EXAMPLE = Path(__file__).resolve().parents[1] / ".env.example"


def _field_path(name: str) -> list[str]:
    return name.removeprefix("RF_").lower().split("__")


def test_every_setting_in_env_example_exists() -> None:
    names = sorted(set(re.findall(r"^#?\s*(RF_[A-Z0-9_]+)=", ENV_EXAMPLE.read_text(), re.M)))
    assert "RF_API__XGBOOST_THREADS" in names
    missing = []
    for name in names:
        model: type[BaseModel] = Settings
        for part in _field_path(name):
            field = model.model_fields.get(part)
            if field is None:
                missing.append(name)
                break
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                model = annotation
    assert missing == []


def test_xgboost_threads_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RF_API__XGBOOST_THREADS", "3")
    assert Settings(_env_file=None).api.xgboost_threads == 3


@pytest.mark.parametrize(
    "name",
    [
        "RF_API__BATCH_THREADS",  # renamed: XGBoost's threads, unrelated to micro-batching
        "RF_API__ADMIN_ENABLED",  # no admin routes exist to enable (promise 15)
        "RF_MONITORING__REFERENCE_BINS",  # never read: monitoring/reference.py's own defaults
        "RF_MONITORING__REFERENCE_DAYS",
    ],
)
def test_a_removed_setting_left_in_the_environment_fails_loudly(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv(name, "2")
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Settings(_env_file=None)


# --- data-set profiles (issue 15: no data-set fact as a code default) ---------------------------

ISO_DAY = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")


def _strings(value: object) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


def test_p35_defaults_hold_no_absolute_date() -> None:
    """A date is a fact of one data set (Favorita's 2015 start, its 2016 earthquake)."""
    values = _strings(Settings(_env_file=None).model_dump(mode="json"))
    dated = [s for s in values if ISO_DAY.search(s)]
    assert dated == []
    xgboost = Settings(_env_file=None).xgboost
    assert (xgboost.train_days, xgboost.train_start, xgboost.exclude_ranges) == (None, None, ())


def _profile(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "profile.toml"
    path.write_text(text)
    return path


PROFILE = """
log_level = "debug"
[xgboost]
train_days = 365
exclude_ranges = [["2020-03-15", "2020-04-30"]]
[backtest]
folds = 2
"""


def test_a_profile_sets_fields_of_several_sections(tmp_path: Path) -> None:
    settings = settings_for(_profile(tmp_path, PROFILE), _env_file=None)
    assert settings.xgboost.train_days == 365
    assert settings.xgboost.exclude_ranges == (("2020-03-15", "2020-04-30"),)
    assert settings.backtest.folds == 2
    assert settings.log_level == "DEBUG"
    assert settings.xgboost.max_depth == XGBoostConfig().max_depth  # the rest: defaults


def test_p35_env_and_dotenv_beat_the_profile_field_by_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    profile = _profile(tmp_path, PROFILE)
    monkeypatch.setenv("RF_XGBOOST__TRAIN_DAYS", "100")
    dotenv = tmp_path / ".env"
    dotenv.write_text("RF_BACKTEST__FOLDS=3\nRF_XGBOOST__TRAIN_DAYS=200\n")
    settings = settings_for(profile, _env_file=dotenv)
    assert settings.xgboost.train_days == 100  # env > .env > profile
    assert settings.backtest.folds == 3  # .env > profile
    assert settings.xgboost.exclude_ranges == (("2020-03-15", "2020-04-30"),)  # merged, kept
    assert settings_for(profile, _env_file=dotenv, backtest={"folds": 1}).backtest.folds == 1


@pytest.mark.parametrize(
    ("text", "named", "allowed"),
    [
        ('[xgboost]\ntrain_begin = "2015-01-01"\n', "xgboost.train_begin", "train_days"),
        ("[xgbost]\nmax_depth = 6\n", "unknown key xgbost", "xgboost"),
        ("learning_rate = 0.1\n", "unknown key learning_rate", "log_level"),
    ],
)
def test_p35_an_unknown_profile_key_is_named_with_the_allowed_keys(
    tmp_path: Path, text: str, named: str, allowed: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(named)) as caught:
        settings_for(_profile(tmp_path, text), _env_file=None)
    assert allowed in str(caught.value).split("allows:")[1]


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('[xgboost]\ntrain_start = "2015/01/01"\n', "train_start"),
        ('[xgboost]\nexclude_ranges = [["2016-05-31", "2016-04-16"]]\n', "exclude_ranges"),
        ("[xgboost]\ntrain_days = 10\n", "train_days"),  # not longer than the valid slice
        ("[xgboost\n", "not valid TOML"),
    ],
)
def test_a_bad_profile_value_names_its_field(tmp_path: Path, text: str, field: str) -> None:
    with pytest.raises((ValidationError, ConfigError), match=field):
        settings_for(_profile(tmp_path, text), _env_file=None)


def test_p35_the_favorita_profile_reproduces_the_previous_defaults() -> None:
    """``--config favorita``: every setting exactly what Favorita ran on before profiles."""
    path = resolve_profile("favorita")
    assert path == SHIPPED_PROFILES / "favorita.toml"
    favorita = settings_for(path, _env_file=None).model_dump()
    previous = Settings(_env_file=None).model_dump()
    previous["xgboost"]["train_start"] = "2015-01-01"
    previous["xgboost"]["exclude_ranges"] = (("2016-04-16", "2016-05-31"),)
    assert favorita == previous


def test_shipped_profiles_are_package_data() -> None:
    """A non-editable install carries them: pyproject's package-data globs match every one."""
    import tomllib

    pyproject = tomllib.loads((ENV_EXAMPLE.parent / "pyproject.toml").read_text())
    globs = pyproject["tool"]["setuptools"]["package-data"]["retail_forecast"]
    package = SHIPPED_PROFILES.parent
    shipped = {p for g in globs for p in package.glob(g)}
    profiles = set(SHIPPED_PROFILES.glob("*.toml"))
    assert profiles
    assert profiles <= shipped


def test_config_names_a_file_or_a_shipped_profile(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"not a shipped profile \(favorita"):
        resolve_profile("favorit")
    with pytest.raises(ConfigError, match="no such file"):
        resolve_profile(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="no such file"):
        settings_for(tmp_path / "missing.toml")
