"""Typer app ``retail-forecast``: data | backtest | train | forecast | serve | monitor | aws."""

from __future__ import annotations

import logging
import sys

import typer

from retail_forecast.commands import aws, data, modeling, monitor, serving
from retail_forecast.commands.common import EXIT_ERROR, EXIT_UNUSABLE_DATA, err_console
from retail_forecast.errors import DataValidationError, ForecastError

logger = logging.getLogger(__name__)

app = typer.Typer(
    name="retail-forecast",
    help="Daily sales forecasts per (store, product family), 16 days ahead.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(data.app, name="data")
app.command("backtest")(modeling.backtest)
app.command("train")(modeling.train)
app.command("run")(modeling.run)
app.command("example-request")(modeling.example_request)
app.command("forecast")(modeling.forecast)
app.command("serve")(serving.serve)
app.command("serve-sagemaker")(serving.serve_sagemaker)
app.add_typer(monitor.app, name="monitor")
app.add_typer(aws.app, name="aws")


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
