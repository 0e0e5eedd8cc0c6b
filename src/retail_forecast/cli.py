"""Typer app ``retail-forecast``: data | backtest | train | forecast | serve | monitor | aws."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from retail_forecast.config import Settings
from retail_forecast.errors import DataValidationError, ForecastError
from retail_forecast.utils.log import configure_logging

logger = logging.getLogger(__name__)
console = Console()
err_console = Console(stderr=True)

app = typer.Typer(
    name="retail-forecast",
    help="Daily sales forecasts per (store, product family), 16 days ahead.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Generate, validate and import Kaggle-layout sales data.")
app.add_typer(data_app, name="data")

EXIT_ERROR = 1
EXIT_UNUSABLE_DATA = 2


def _settings(*, json_output: bool = False) -> Settings:
    settings = Settings()
    configure_logging(settings.log_level, settings.log_dir, to_stderr=json_output)
    return settings


def _fail(message: str, code: int) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _print_json(obj: object) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


# --- data --------------------------------------------------------------------------------------


@data_app.command("generate")
def data_generate(
    out: Annotated[Path, typer.Option("--out", help="Directory to write the Kaggle-layout files.")],
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same files.")] = 0,
    full: Annotated[
        bool, typer.Option("--full", help="Full size: 54 stores x 33 families x 1,684 days.")
    ] = False,
) -> None:
    """Write a synthetic data set in the Kaggle layout (train.csv, test.csv, stores.csv, ...)."""
    _settings()
    raise _fail("not implemented yet", EXIT_ERROR)


@data_app.command("validate")
def data_validate(
    data_dir: Annotated[str, typer.Option("--data-dir", help="Directory with Kaggle files.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Validate every rule in one pass; exit 0 when the data is usable, 2 when it is not."""
    _settings(json_output=json_output)
    raise _fail("not implemented yet", EXIT_ERROR)


@data_app.command("import")
def data_import(
    data_dir: Annotated[str, typer.Option("--data-dir", help="Directory with Kaggle files.")],
) -> None:
    """Validate, quarantine bad rows, complete the panel and write data/processed/sales.parquet."""
    _settings()
    raise _fail("not implemented yet", EXIT_ERROR)


def main() -> None:
    """Entry point with the CLI's error boundary: our errors become one line and an exit code."""
    try:
        app()
    except DataValidationError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(EXIT_UNUSABLE_DATA)
    except ForecastError as exc:
        logger.exception("command failed")
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(EXIT_ERROR)


if __name__ == "__main__":
    main()
