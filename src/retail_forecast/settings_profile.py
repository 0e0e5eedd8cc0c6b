"""A data set's TOML profile: where it is found, the source that reads it strictly, its mappings.

A profile holds a data set's facts (Favorita's earthquake, its training start) so that no code
default carries them. ``--config PATH`` or a shipped name (``profiles/<name>.toml``) selects
one; without it, ``retail_forecast.toml`` in the data directory is used when present.
"""

from __future__ import annotations

import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic_settings import BaseSettings, TomlConfigSettingsSource

from retail_forecast.errors import ConfigError

PROFILE_FILE = "retail_forecast.toml"
# Package data (pyproject.toml), so a shipped name resolves after any install, editable or not.
SHIPPED_PROFILES = Path(__file__).parent / "profiles"
# The profile config.settings_for is building Settings with (a context variable, not a global:
# concurrent builds in other threads or tasks keep their own).
ACTIVE_PROFILE: ContextVar[Path | None] = ContextVar("retail_forecast_profile", default=None)


def resolve_profile(value: str | Path) -> Path:
    """``--config``'s value: a TOML file, or the name of a shipped profile (``favorita``)."""
    path = Path(value)
    if path.is_file():
        return path
    shipped = SHIPPED_PROFILES / f"{value}.toml"
    if path.suffix == "" and len(path.parts) == 1 and shipped.is_file():
        return shipped
    names = ", ".join(shipped_profiles())
    raise ConfigError(f"--config {value}: no such file, and not a shipped profile ({names})")


def shipped_profiles() -> list[str]:
    """Names ``--config`` accepts besides a path."""
    return sorted(p.stem for p in SHIPPED_PROFILES.glob("*.toml"))


def profile_next_to(data_dir: str | Path) -> Path | None:
    """``<data_dir>/retail_forecast.toml`` when it exists (a local directory only)."""
    if str(data_dir).startswith("s3://"):
        return None
    path = Path(data_dir) / PROFILE_FILE
    return path if path.is_file() else None


class ProfileSource(TomlConfigSettingsSource):
    """A TOML profile where a key Settings does not have is an error, not silently ignored."""

    def __init__(self, settings_cls: type[BaseSettings], toml_file: Path) -> None:
        self.checked_against = settings_cls  # the file is read inside the base __init__
        super().__init__(settings_cls, toml_file=toml_file)

    def _read_file(self, file_path: Any) -> dict[str, Any]:
        try:
            data = super()._read_file(file_path)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"profile {file_path}: not valid TOML: {exc}") from exc
        check_keys(data, self.checked_against, f"profile {file_path}")
        return data


def check_keys(data: dict[str, Any], model: type[BaseModel], where: str, prefix: str = "") -> None:
    """Raise ConfigError naming the first key ``model`` (or its nested section) does not have."""
    for key, value in data.items():
        field = model.model_fields.get(key)
        if field is None:
            section = f"[{prefix.rstrip('.')}]" if prefix else "the top level"
            allowed = ", ".join(sorted(model.model_fields))
            raise ConfigError(f"{where}: unknown key {prefix}{key}; {section} allows: {allowed}")
        annotation = field.annotation
        is_section = isinstance(annotation, type) and issubclass(annotation, BaseModel)
        if isinstance(value, dict) and is_section:
            check_keys(value, annotation, where, f"{prefix}{key}.")  # type: ignore[arg-type]


class _Mapping(BaseModel):
    """A frozen profile section that maps the user's own layout (config.Section's rules)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class ColumnMapping(_Mapping):
    """``[data.columns]``: the sales files' own column names (data_processing/mapping.py).

    A key left out means the Kaggle name. Without ``item`` and without a ``family`` column the
    panel has one level (every store is one series, family "ALL"); without ``promotion`` and no
    ``onpromotion`` column, promotion is 0.
    """

    date: str | None = None
    date_format: str | None = None  # strptime format when dates are not ISO, e.g. "%d.%m.%Y"
    store: str | None = None  # integer store ids -> store_nbr
    item: str | None = None  # second key level (text) -> family
    sales: str | None = None  # the target
    promotion: str | None = None  # known-future: promotion flag or count -> onpromotion
    open: str | None = None  # known-future: 1 open / 0 closed -> open


class FileMapping(_Mapping):
    """``[data.files]``: file names (or globs) in the data directory; None: the Kaggle name."""

    sales: str | None = None  # e.g. "sales.csv" or "sales_*.csv" (CSV or parquet)
    future: str | None = None  # the forecast days' covariates (as test.csv); optional
    stores: str | None = None  # absent under a mapping: built from the sales file's stores
    holidays: str | None = None  # Kaggle holidays_events layout; optional


def unmapped(value: BaseModel) -> bool:
    """Whether a mapping section names nothing (then left out of the settings dump)."""
    return not any(value.model_dump().values())
