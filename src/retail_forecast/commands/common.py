"""Shared CLI plumbing: consoles, settings at the edge, exit codes, JSON output, failures."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from retail_forecast.config import Settings, settings_for
from retail_forecast.errors import ConfigError
from retail_forecast.settings_profile import profile_next_to, resolve_profile, shipped_profiles
from retail_forecast.utils.log import configure_logging

logger = logging.getLogger(__name__)
console = Console()
err_console = Console(stderr=True)

EXIT_ERROR = 1
EXIT_UNUSABLE_DATA = 2
EXIT_MONITOR_UNAVAILABLE = 3  # `monitor check`: the monitoring store could not be read


ConfigOption = Annotated[
    str | None,
    typer.Option(
        "--config",
        help="Data-set profile: a TOML file or a shipped name "
        f"({', '.join(shipped_profiles())}); default: retail_forecast.toml in the data directory.",
    ),
]


def load_settings(
    *, json_output: bool = False, config: str | None = None, data_dir: str | Path | None = None
) -> Settings:
    """Build the settings once and configure logging (to stderr when stdout carries JSON).

    The data set's profile is ``--config`` (a file or a shipped name), else
    ``retail_forecast.toml`` in the local ``data_dir``; flags > env > .env > profile > defaults.
    """
    profile: Path | None = None
    try:
        if config is not None:
            profile = resolve_profile(config)
        elif data_dir is not None:
            profile = profile_next_to(data_dir)
        settings = settings_for(profile)
    except (ConfigError, ValidationError) as exc:
        raise fail(f"settings: {exc}", EXIT_ERROR) from exc
    configure_logging(settings.log_level, settings.log_dir, to_stderr=json_output)
    if profile is not None:
        logger.info("settings profile %s", profile)
    return settings


def load_data_settings(
    data_dir: str, *, config: str | None, json_output: bool = False
) -> tuple[Settings, str]:
    """Return the settings with the data set's profile, and the data as a local directory.

    ``s3://`` data is fetched first; its profile is looked for in the local copy, so it needs the
    settings (the S3 client's) before its own profile is known: they are built twice then.
    """
    if not data_dir.startswith("s3://"):
        return load_settings(json_output=json_output, config=config, data_dir=data_dir), data_dir
    settings = load_settings(json_output=json_output, config=config)
    local = local_data_dir(data_dir, settings)
    if config is None and profile_next_to(local) is not None:
        settings = load_settings(json_output=json_output, data_dir=local)
    return settings, local


def fail(message: str, code: int) -> typer.Exit:
    """Print one red error line on stderr and return the ``typer.Exit`` to raise."""
    # escaped: a message may quote a "[section]" of a profile, which rich would take as markup
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def print_json(obj: object) -> None:
    """Write ``obj`` to stdout as indented JSON (non-JSON values via ``str``)."""
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


S3_CACHE = Path("data/s3-cache")


def with_artifacts(settings: Settings, artifacts: str | Path | None) -> Settings:
    """Return ``settings`` with ``--artifacts`` (a directory or ``s3://``) as the bundle root.

    An ``s3://bucket/prefix`` location is resolved through its manifest, downloaded, verified
    and cached under ``data/s3-cache/artifacts``; the returned settings point there.
    """
    if artifacts is None:
        return settings
    location = str(artifacts)
    if location.startswith("s3://"):
        from retail_forecast.aws.s3 import localize_artifacts

        cache = S3_CACHE / "artifacts"
        root = localize_artifacts(location, config=settings.aws, cache_dir=cache)
        return settings.model_copy(update={"artifacts_dir": root})
    return settings.model_copy(update={"artifacts_dir": Path(location)})


def local_data_dir(data_dir: str, settings: Settings) -> str:
    """Return a local Kaggle-layout directory; ``s3://`` data is downloaded to a cache first."""
    if not data_dir.startswith("s3://"):
        return data_dir
    from retail_forecast.aws.datasets import localize_data_dir

    return str(localize_data_dir(data_dir, config=settings.aws, cache_dir=S3_CACHE / "data"))
