"""Shared CLI plumbing: consoles, settings at the edge, exit codes, JSON output, failures."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console

from retail_forecast.config import Settings
from retail_forecast.utils.log import configure_logging

console = Console()
err_console = Console(stderr=True)

EXIT_ERROR = 1
EXIT_UNUSABLE_DATA = 2
EXIT_MONITOR_UNAVAILABLE = 3  # `monitor check`: the monitoring store could not be read


def load_settings(*, json_output: bool = False) -> Settings:
    """Build the settings once and configure logging (to stderr when stdout carries JSON)."""
    settings = Settings()
    configure_logging(settings.log_level, settings.log_dir, to_stderr=json_output)
    return settings


def fail(message: str, code: int) -> typer.Exit:
    """Print one red error line on stderr and return the ``typer.Exit`` to raise."""
    err_console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
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
