"""``retail-forecast data``: generate, validate and import Kaggle-layout sales data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from retail_forecast.commands.common import (
    EXIT_UNUSABLE_DATA,
    console,
    err_console,
    fail,
    load_settings,
    local_data_dir,
    print_json,
)
from retail_forecast.errors import DataValidationError

app = typer.Typer(help="Generate, validate and import Kaggle-layout sales data.")


@app.command("generate")
def data_generate(
    out: Annotated[Path, typer.Option("--out", help="Directory to write the Kaggle-layout files.")],
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same files.")] = 0,
    full: Annotated[
        bool, typer.Option("--full", help="Full size: 54 stores x 33 families x 1,684 days.")
    ] = False,
) -> None:
    """Write a synthetic data set in the Kaggle layout (train.csv, test.csv, stores.csv, ...)."""
    from rich.table import Table

    from retail_forecast.data_processing.synthetic import default_config, train_dates, write_dataset

    load_settings()
    config = default_config(full=full, seed=seed)
    with console.status("generating synthetic data"):
        paths = write_dataset(out, config)
    dates = train_dates(config)
    table = Table(title="synthetic data (Kaggle layout)", show_header=False)
    table.add_row("train rows", f"{config.n_stores * config.n_families * len(dates):,}")
    table.add_row("stores x families", f"{config.n_stores} x {config.n_families}")
    table.add_row("dates", f"{dates[0]:%Y-%m-%d} .. {dates[-1]:%Y-%m-%d} ({len(dates):,} days)")
    table.add_row("seed", str(seed))
    table.add_row("written to", str(paths["train"].parent))
    console.print(table)


@app.command("validate")
def data_validate(
    data_dir: Annotated[str, typer.Option("--data-dir", help="Directory with Kaggle files.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Validate every rule in one pass; exit 0 when the data is usable, 2 when it is not."""
    from rich.table import Table

    from retail_forecast.data_processing.dataset import build_dataset, summary_rows

    settings = load_settings(json_output=json_output)
    try:
        with err_console.status("validating"):
            report = build_dataset(
                local_data_dir(data_dir, settings), settings.data, strict=False
            ).report
    except DataValidationError as exc:  # a missing required file or column
        if json_output:
            print_json({"usable": False, "errors": [str(exc)]})
        raise fail(str(exc), EXIT_UNUSABLE_DATA) from exc
    if json_output:
        print_json(report.to_dict())
    else:
        table = Table(title=f"data validate {data_dir}", show_header=False)
        for label, value in summary_rows(report):
            table.add_row(label, value)
        console.print(table)
    if not report.is_usable:
        raise fail("data unusable: " + "; ".join(report.errors), EXIT_UNUSABLE_DATA)


@app.command("import")
def data_import(
    data_dir: Annotated[str, typer.Option("--data-dir", help="Directory with Kaggle files.")],
) -> None:
    """Validate, quarantine bad rows, complete the panel and write data/processed/sales.parquet."""
    from rich.table import Table

    from retail_forecast.data_processing.dataset import summary_rows
    from retail_forecast.pipeline.data_import import import_dataset

    settings = load_settings()
    try:
        with err_console.status("importing"):
            built = import_dataset(local_data_dir(data_dir, settings), settings.data)
    except DataValidationError as exc:
        raise fail(str(exc), EXIT_UNUSABLE_DATA) from exc
    table = Table(title=f"data import {data_dir}", show_header=False)
    for label, value in summary_rows(built.report):
        table.add_row(label, value)
    status = "written" if built.written else "unchanged (same fingerprint)"
    table.add_row("processed", f"{settings.data.processed_dir} ({status})")
    if built.quarantine_path is not None:
        table.add_row("quarantine", str(built.quarantine_path))
    console.print(table)
