"""``retail-forecast monitor``: drift vs the bundle's reference, accuracy over time, alerts."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from retail_forecast.commands.common import (
    EXIT_ERROR,
    EXIT_MONITOR_UNAVAILABLE,
    ConfigOption,
    console,
    fail,
    load_data_settings,
    load_settings,
    print_json,
    with_artifacts,
)
from retail_forecast.config import Settings
from retail_forecast.errors import ForecastError

logger = logging.getLogger(__name__)

app = typer.Typer(help="Drift vs the bundle's reference, accuracy over time, alerts.")

ArtifactsOpt = Annotated[
    str | None, typer.Option("--artifacts", help="Bundle root (default: settings).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def _current_bundle(artifacts: Path) -> Any:
    from retail_forecast.artifacts import ModelBundle

    return ModelBundle.open_current(artifacts)


def _reference_profile(reference: Path | None, artifacts: Path) -> Any:
    import pandas as pd

    from retail_forecast.errors import MissingInputError

    if reference is not None:
        if not reference.is_file():
            raise MissingInputError(f"reference profile {reference} not found")
        return pd.read_parquet(reference)
    return _current_bundle(artifacts).read_parquet("reference.parquet")


def _drift_window(data_dir: str, settings: Settings, window_days: int | None) -> Any:
    """Return the last days of a local data batch, read with the data set's mapping."""
    from retail_forecast.data_processing.dataset import build_dataset
    from retail_forecast.monitoring.status import recent_window

    sales = build_dataset(data_dir, settings.data).sales
    return recent_window(sales, days=window_days or settings.monitoring.drift_window_days)


@app.command("drift")
def monitor_drift(
    data_dir: Annotated[str, typer.Option("--data-dir", help="Kaggle-layout data batch.")],
    reference: Annotated[
        Path | None, typer.Option("--reference", help="A reference.parquet (else the bundle's).")
    ] = None,
    artifacts: ArtifactsOpt = None,
    window_days: Annotated[
        int | None, typer.Option("--window-days", min=1, help="Last days of the batch.")
    ] = None,
    config: ConfigOption = None,
    json_output: JsonOpt = False,
) -> None:
    """Compare the last days of a data batch with the current bundle's reference profile."""
    from rich.table import Table

    from retail_forecast.monitoring.drift import check_drift

    settings, local = load_data_settings(data_dir, config=config, json_output=json_output)
    profile = _reference_profile(reference, with_artifacts(settings, artifacts).artifacts_dir)
    current = _drift_window(local, settings, window_days)
    report = check_drift(profile, current, config=settings.monitoring)
    if json_output:
        print_json(report.to_dict())
        return
    table = Table(title=f"drift: {report.status} (window {report.window})")
    for col in ("feature / check", "test", "statistic", "threshold", "status"):
        table.add_column(col)
    for f in report.features:
        stat = "" if f.statistic is None else f"{f.statistic:.4f}"
        table.add_row(f.feature, f.test, stat, f"{f.threshold:g}", f.status)
    for c in report.checks:
        stat = "" if c.statistic is None else f"{c.statistic:.4f}"
        table.add_row(c.name, "", stat, f"{c.threshold:g}", c.status)
    console.print(table)


def _backtest_metrics(metrics: Path | None, artifacts: Path) -> tuple[Any, str | None]:
    from retail_forecast.errors import MissingInputError
    from retail_forecast.utils.io import read_json

    if metrics is not None:
        if not metrics.is_file():
            raise MissingInputError(f"metrics file {metrics} not found")
        return read_json(metrics), None
    bundle = _current_bundle(artifacts)
    return bundle.read_json("metrics.json"), bundle.version


@app.command("check")
def monitor_check(
    artifacts: ArtifactsOpt = None,
    metrics: Annotated[
        Path | None, typer.Option("--metrics", help="A metrics.json (else the bundle's).")
    ] = None,
    model_version: Annotated[
        str | None, typer.Option("--model-version", help="Version to rate (else current).")
    ] = None,
    config: ConfigOption = None,
    json_output: JsonOpt = False,
) -> None:
    """Rate recent accuracy vs the backtest and the coverage of the served quantiles.

    Exit 1 on an alert (accuracy ``degraded`` or coverage ``miscalibrated``), 3 when the store
    is unreadable. ``--json``: the accuracy status with the coverage under ``coverage``.
    """
    from retail_forecast.monitoring.prediction_log import PredictionLog

    settings = load_settings(json_output=json_output, config=config)
    cfg = settings.monitoring
    backtest_metrics, version = _backtest_metrics(
        metrics, with_artifacts(settings, artifacts).artifacts_dir
    )
    log = PredictionLog.from_config(cfg)
    status = log.status(
        backtest_metrics,
        model_version=model_version or version,
        ratio=cfg.degradation_ratio,
        window_days=cfg.window_days,
        min_rows=cfg.min_accuracy_rows,
    )
    coverage = log.coverage(
        model_version=status.model_version or model_version or version,
        window_days=cfg.window_days,
    )
    if json_output:
        print_json({**status.to_dict(), "coverage": coverage.to_dict()})
    else:
        for name, rated in (("accuracy", status), ("coverage", coverage)):
            style = "red" if rated.alert else "green"
            line = f"{name}: [{style}]{rated.status}[/{style}] {rated.message}"
            console.print(line, highlight=False)
    if "unavailable" in (status.status, coverage.status):
        raise typer.Exit(EXIT_MONITOR_UNAVAILABLE)
    if status.alert or coverage.alert:
        raise typer.Exit(EXIT_ERROR)


@app.command("ingest-actuals")
def monitor_ingest_actuals(
    file: Annotated[
        Path, typer.Option("--file", help="CSV: date,store_nbr,family,sales[,correction].")
    ],
    config: ConfigOption = None,
    json_output: JsonOpt = False,
) -> None:
    """Store observed sales for accuracy tracking (idempotent; exit 1 when a row conflicts).

    A row whose sales differ from the actual already stored for its date and series is a
    conflict: the stored value stays (the storage package's conflict policy), the other rows are
    stored, and the conflicts are counted and named. A row whose ``correction`` column is True
    replaces the stored value instead, audited in the log's ``corrections`` table.
    """
    import dataclasses

    import pandas as pd

    from retail_forecast.errors import MissingInputError
    from retail_forecast.monitoring.prediction_log import PredictionLog
    from retail_forecast.storage.conflict_policy import conflict_message

    settings = load_settings(json_output=json_output, config=config)
    if not file.is_file():
        raise MissingInputError(f"actuals file {file} not found")
    result = PredictionLog.from_config(settings.monitoring).ingest_actuals(pd.read_csv(file))
    if json_output:
        print_json(dataclasses.asdict(result))
    else:
        console.print(
            f"received {result.received:,}: inserted {result.inserted:,}, unchanged "
            f"{result.unchanged:,}, corrected {result.corrected:,}, conflicts "
            f"{result.conflicts:,}, rejected {result.rejected:,}"
        )
    if not result.ok:
        raise fail(f"actuals not stored: {result.error}", EXIT_ERROR)
    if result.conflicts:
        outcome = "the stored values are kept, the other rows were stored"
        examples = result.conflict_examples
        raise fail(conflict_message(examples, outcome=outcome, count=result.conflicts), EXIT_ERROR)


@app.command("report")
def monitor_report(
    out: Annotated[Path, typer.Option("--out", help="HTML file to write.")],
    data_dir: Annotated[
        str | None, typer.Option("--data-dir", help="Data batch for the drift section.")
    ] = None,
    reference: Annotated[Path | None, typer.Option("--reference")] = None,
    artifacts: ArtifactsOpt = None,
    metrics: Annotated[Path | None, typer.Option("--metrics")] = None,
    days: Annotated[int, typer.Option("--days", min=1, help="Target days to show.")] = 56,
    config: ConfigOption = None,
) -> None:
    """Write a self-contained HTML report: drift, accuracy, worst series, quantile bands."""
    from retail_forecast.monitoring.drift import check_drift
    from retail_forecast.monitoring.html_report import QuantileSection, write_report
    from retail_forecast.monitoring.prediction_log import PredictionLog

    local = None
    if data_dir is None:
        settings = load_settings(config=config)
    else:
        settings, local = load_data_settings(data_dir, config=config)
    root = with_artifacts(settings, artifacts).artifacts_dir
    log = PredictionLog.from_config(settings.monitoring)
    drift = None
    if local is not None:
        current = _drift_window(local, settings, None)
        profile = _reference_profile(reference, root)
        drift = check_drift(profile, current, config=settings.monitoring)
    status = None
    try:
        backtest_metrics, version = _backtest_metrics(metrics, root)
    except ForecastError as exc:
        logger.warning("report without accuracy status: %s", exc)
    else:
        status = log.status(
            backtest_metrics,
            model_version=version,
            ratio=settings.monitoring.degradation_ratio,
            window_days=settings.monitoring.window_days,
            min_rows=settings.monitoring.min_accuracy_rows,
        )
    accuracy = log.accuracy(by=["date", "family"], window_days=days)
    worst = log.worst_series(n=3, window_days=days)
    quantiles = QuantileSection(
        coverage=log.coverage(
            model_version=status.model_version if status else None,
            window_days=settings.monitoring.window_days,
        ),
        bands=log.bands(model_version=status.model_version if status else None, window_days=days),
    )
    write_report(
        out,
        drift=drift,
        accuracy=accuracy,
        worst_series=worst,
        status=status,
        quantiles=quantiles,
    )
    console.print(f"report written to {out}")
