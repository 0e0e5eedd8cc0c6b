"""``retail-forecast data``: generate, validate and import Kaggle-layout sales data."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from retail_forecast.commands.common import (
    EXIT_UNUSABLE_DATA,
    ConfigOption,
    console,
    err_console,
    fail,
    load_data_settings,
    load_settings,
    print_json,
)
from retail_forecast.errors import DataValidationError

if TYPE_CHECKING:
    import pandas as pd

    from retail_forecast.data_processing.synthetic import SyntheticConfig

# SyntheticConfig field -> the generate option that sets it (error messages name the option).
GENERATE_OPTIONS = {
    "n_stores": "--stores",
    "n_families": "--families",
    "n_days": "--days",
    "start_date": "--start",
    "horizon": "--horizon",
    "gap_stores": "--gap-stores",
    "items_per_store": "--items",
}

app = typer.Typer(help="Generate, validate and import Kaggle-layout sales data.")


SHAPE_HELP = (
    "Panel shape preset: favorita-like (the default), closed-sundays, regional, gaps, "
    "one-family, recent-years (2019-2022), long-horizon (28 days), m5-sized (10 stores x 3,049 "
    "items x 1,941 days = 59 M rows, as Parquet parts); the options below override it."
)


@app.command("generate")
def data_generate(
    out: Annotated[Path, typer.Option("--out", help="Directory to write the Kaggle-layout files.")],
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same files.")] = 0,
    full: Annotated[
        bool, typer.Option("--full", help="Full size: 54 stores x 33 families x 1,684 days.")
    ] = False,
    shape: Annotated[str, typer.Option("--shape", help=SHAPE_HELP)] = "favorita-like",
    stores: Annotated[int | None, typer.Option("--stores", help="Number of stores.")] = None,
    families: Annotated[
        int | None, typer.Option("--families", help="Number of product families (1-33).")
    ] = None,
    days: Annotated[int | None, typer.Option("--days", help="Number of train dates.")] = None,
    start: Annotated[
        str | None, typer.Option("--start", help="First train date, YYYY-MM-DD.")
    ] = None,
    horizon: Annotated[
        int | None, typer.Option("--horizon", help="Days of test.csv after the last train date.")
    ] = None,
    closed_sundays: Annotated[
        bool, typer.Option("--closed-sundays", help="Stores closed on Sundays (an open column).")
    ] = False,
    regional_holidays: Annotated[
        bool,
        typer.Option("--regional-holidays", help="More regional/local holidays, closed days."),
    ] = False,
    gap_stores: Annotated[
        int | None, typer.Option("--gap-stores", help="Stores with a 120-day gap (no rows).")
    ] = None,
    items: Annotated[
        int | None,
        typer.Option(
            "--items",
            help="Item series per store (store x item panels): train_parts/*.parquet, one "
            "block of whole series a part, written a block at a time (bounded memory).",
        ),
    ] = None,
) -> None:
    """Write a synthetic data set in the Kaggle layout (train.csv, test.csv, stores.csv, ...).

    Closed days: with --closed-sundays, train.csv and test.csv get an "open" column (1/0) and a
    closed day is a row with open 0, sales 0; otherwise a closed store-day has no train row and
    holidays_events.csv has a row of type "Closed" for its locale (National, Regional = the
    store's state, Local = its city). A gap is days with no row at all and no reason given.
    """
    from retail_forecast.data_processing.synthetic import train_dates, write_dataset
    from retail_forecast.data_processing.synthetic_profile import write_profile

    load_settings()
    options: dict[str, object] = {
        "n_stores": stores,
        "n_families": families,
        "n_days": days,
        "start_date": _iso_date(start, "--start"),
        "horizon": horizon,
        "closed_sundays": closed_sundays or None,
        "regional_holidays": regional_holidays or None,
        "gap_stores": gap_stores,
        "items_per_store": items,
    }
    config = _generate_config(shape, full=full, seed=seed, options=options)
    with console.status("generating synthetic data"):
        paths = write_dataset(out, config)
        profile = write_profile(out, config)  # its shock, left out of training by the commands
    _print_generated(config, paths, train_dates(config), profile)


def _iso_date(text: str | None, option: str) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise typer.BadParameter(f"{text!r} is not a date YYYY-MM-DD", param_hint=option) from exc


def _generate_config(
    shape: str, *, full: bool, seed: int, options: dict[str, object]
) -> SyntheticConfig:
    """Build the shape preset plus the options given; a bad value names its option."""
    from pydantic import ValidationError

    from retail_forecast.data_processing.synthetic import shaped_config

    given = {name: value for name, value in options.items() if value is not None}
    if given.get("n_families") is not None:
        given["family_list"] = ()  # an explicit count replaces a preset's named families
    try:
        return shaped_config(shape, full=full, seed=seed, **given)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "options"
        hint = GENERATE_OPTIONS.get(field, field)
        raise typer.BadParameter(error["msg"], param_hint=hint) from exc
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--shape") from exc


def _print_generated(
    config: SyntheticConfig, paths: dict[str, Path], dates: pd.DatetimeIndex, profile: Path
) -> None:
    from rich.table import Table

    from retail_forecast.data_processing.synthetic_parts import parts_rows

    if "train" in paths:
        with paths["train"].open("rb") as handle:
            rows = sum(1 for _ in handle) - 1
    else:  # item panels: the parts' marker counts them
        rows = parts_rows(paths["train_parts"])
    table = Table(title="synthetic data (Kaggle layout)", show_header=False)
    table.add_row("train rows", f"{rows:,}")
    n_series = config.items_per_store or len(config.families())
    label = "stores x items" if config.items_per_store else "stores x families"
    table.add_row(label, f"{config.n_stores} x {n_series:,}")
    table.add_row("dates", f"{dates[0]:%Y-%m-%d} .. {dates[-1]:%Y-%m-%d} ({len(dates):,} days)")
    table.add_row("test days", str(config.horizon))
    table.add_row("seed", str(config.seed))
    table.add_row("written to", str(paths["config"].parent))
    table.add_row("profile", str(profile))
    console.print(table)


@app.command("validate")
def data_validate(
    data_dir: Annotated[str, typer.Option("--data-dir", help="Directory with Kaggle files.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    config: ConfigOption = None,
) -> None:
    """Validate every rule in one pass; exit 0 when the data is usable, 2 when it is not."""
    from rich.table import Table

    from retail_forecast.data_processing.dataset import build_dataset, summary_rows

    settings, local = load_data_settings(data_dir, config=config, json_output=json_output)
    try:
        with err_console.status("validating"):
            report = build_dataset(
                local, settings.data, strict=False, horizon=settings.forecast.horizon
            ).report
    except DataValidationError as exc:  # a missing required file or column, a panel not daily
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
    config: ConfigOption = None,
) -> None:
    """Validate, quarantine bad rows, complete the panel and write data/processed/sales.parquet."""
    from rich.table import Table

    from retail_forecast.data_processing.dataset import summary_rows
    from retail_forecast.pipeline.data_import import import_dataset

    settings, local = load_data_settings(data_dir, config=config)
    try:
        with err_console.status("importing"):
            built = import_dataset(local, settings.data, horizon=settings.forecast.horizon)
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
