"""Typer app ``retail-forecast``: data | backtest | train | forecast | serve | monitor | aws."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

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
    from rich.table import Table

    from retail_forecast.data_processing.synthetic import default_config, train_dates, write_dataset

    _settings()
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


@data_app.command("validate")
def data_validate(
    data_dir: Annotated[str, typer.Option("--data-dir", help="Directory with Kaggle files.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Validate every rule in one pass; exit 0 when the data is usable, 2 when it is not."""
    from rich.table import Table

    from retail_forecast.pipeline.build_dataset import build_dataset, summary_rows

    settings = _settings(json_output=json_output)
    try:
        with err_console.status("validating"):
            report = build_dataset(data_dir, settings.data, strict=False).report
    except DataValidationError as exc:  # a missing required file or column
        if json_output:
            _print_json({"usable": False, "errors": [str(exc)]})
        raise _fail(str(exc), EXIT_UNUSABLE_DATA) from exc
    if json_output:
        _print_json(report.to_dict())
    else:
        table = Table(title=f"data validate {data_dir}", show_header=False)
        for label, value in summary_rows(report):
            table.add_row(label, value)
        console.print(table)
    if not report.is_usable:
        raise _fail("data unusable: " + "; ".join(report.errors), EXIT_UNUSABLE_DATA)


@data_app.command("import")
def data_import(
    data_dir: Annotated[str, typer.Option("--data-dir", help="Directory with Kaggle files.")],
) -> None:
    """Validate, quarantine bad rows, complete the panel and write data/processed/sales.parquet."""
    from rich.table import Table

    from retail_forecast.pipeline.build_dataset import import_dataset, summary_rows

    settings = _settings()
    try:
        with err_console.status("importing"):
            built = import_dataset(data_dir, settings.data)
    except DataValidationError as exc:
        raise _fail(str(exc), EXIT_UNUSABLE_DATA) from exc
    table = Table(title=f"data import {data_dir}", show_header=False)
    for label, value in summary_rows(built.report):
        table.add_row(label, value)
    status = "written" if built.written else "unchanged (same fingerprint)"
    table.add_row("processed", f"{settings.data.processed_dir} ({status})")
    if built.quarantine_path is not None:
        table.add_row("quarantine", str(built.quarantine_path))
    console.print(table)


# --- backtest ----------------------------------------------------------------------------------


@app.command("backtest")
def backtest(
    data_dir: Annotated[str, typer.Option("--data-dir", help="Directory with Kaggle files.")],
    models: Annotated[
        str, typer.Option("--models", help="Comma-separated models to evaluate, e.g. xgboost.")
    ] = "xgboost",
    folds: Annotated[int | None, typer.Option("--folds", min=1, help="Rolling windows.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Rolling-origin backtest (refit per fold) of the models next to the four baselines."""
    from retail_forecast.pipeline.build_dataset import build_dataset
    from retail_forecast.training.backtest import run_backtest, summary_table

    settings = _settings(json_output=json_output)
    names = [m.strip() for m in models.split(",") if m.strip()]
    _model_factories(settings, names, holidays=None)  # fail fast on unknown names
    built = build_dataset(data_dir, settings.data)
    factories = _model_factories(settings, names, holidays=built.holidays)
    result = run_backtest(
        built.sales,
        factories,
        folds=folds or settings.backtest.folds,
        horizon=settings.backtest.horizon,
        step=settings.backtest.step,
        progress=not json_output,
    )
    if json_output:
        _print_json(result.to_dict())
    else:
        console.print(summary_table(result))


def _model_factories(settings: Settings, names: list[str], *, holidays: Any) -> dict[str, Any]:
    """Map model names to zero-argument factories (each fold gets a fresh, unfitted model)."""
    from functools import partial

    from retail_forecast.models.xgboost import XGBForecaster

    known: dict[str, Any] = {
        "xgboost": partial(XGBForecaster, settings.xgboost, settings.features, holidays=holidays),
    }
    unknown = sorted(set(names) - set(known))
    if unknown or not names:
        raise _fail(f"unknown models {unknown}; choose from {sorted(known)}", EXIT_ERROR)
    return {name: known[name] for name in names}


# --- train / run ---------------------------------------------------------------------------------

DEFAULT_DATA_HELP = "Kaggle-layout directory (default: settings; the built-in synthetic data)."


def _resolve_data_dir(data_dir: str | None, settings: Settings) -> str:
    """Return the data directory; generate the built-in default data when it is missing."""
    from retail_forecast.data_processing.synthetic import default_config, write_dataset

    chosen = data_dir or settings.data.data_dir
    is_default = data_dir is None and chosen == "data/default"
    if is_default and not (Path(chosen) / "train.csv").exists():
        console.print(f"generating the built-in synthetic data in {chosen} ...")
        write_dataset(Path(chosen), default_config())
    return chosen


def _train(data_dir: str | None, out: Path | None, settings: Settings) -> Any:
    from retail_forecast.pipeline.build_dataset import import_dataset
    from retail_forecast.pipeline.fit import train_bundle
    from retail_forecast.training.backtest import summary_table

    chosen = _resolve_data_dir(data_dir, settings)
    built = import_dataset(chosen, settings.data)
    console.print(
        f"data: {built.report.rows_kept:,} rows kept, {built.report.rows_quarantined:,} "
        f"quarantined, fingerprint {built.fingerprint[:12]}"
    )
    result = train_bundle(built, settings, out_dir=out or settings.artifacts_dir, progress=True)
    console.print(summary_table(result.backtest))
    weights = result.weights
    console.print(
        f"blend: xgboost weight {weights.global_weight:.2f} "
        f"({len(weights.per_family)} families with their own weight)"
    )
    console.print(f"bundle [bold]{result.version}[/bold] written to {result.path} (current)")
    return result


@app.command("train")
def train(
    data_dir: Annotated[str | None, typer.Option("--data-dir", help=DEFAULT_DATA_HELP)] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Bundle root (default: artifacts/).")
    ] = None,
) -> None:
    """Ingest, validate, backtest, fit XGBoost + LSTM on all data, blend, write a bundle."""
    _train(data_dir, out, _settings())


@app.command("example-request")
def example_request(
    artifacts: Annotated[
        Path | None, typer.Option("--artifacts", help="Bundle root (default: artifacts/).")
    ] = None,
    store: Annotated[
        int | None, typer.Option("--store", help="store_nbr (default: first).")
    ] = None,
    family: Annotated[str | None, typer.Option("--family", help="family (default: first).")] = None,
) -> None:
    """Print a valid POST /api/v1/predict body: one series, the 16 days after the bundle's data."""
    import datetime as dt

    from retail_forecast.artifacts import ModelBundle

    settings = _settings(json_output=True)
    domain = ModelBundle.open_current(artifacts or settings.artifacts_dir).manifest.metadata[
        "domain"
    ]
    start = dt.date.fromisoformat(domain["history_end"]) + dt.timedelta(days=1)
    rows = [
        {
            "date": str(start + dt.timedelta(days=k)),
            "store_nbr": store if store is not None else domain["stores"][0],
            "family": family if family is not None else domain["families"][0],
            "onpromotion": 0,
        }
        for k in range(int(domain["horizon"]))
    ]
    sys.stdout.write(json.dumps({"rows": rows}) + "\n")


# --- monitor -----------------------------------------------------------------------------------

monitor_app = typer.Typer(help="Drift vs the bundle's reference, accuracy over time, alerts.")
app.add_typer(monitor_app, name="monitor")
EXIT_MONITOR_UNAVAILABLE = 3  # `monitor check`: the monitoring store could not be read

ArtifactsOpt = Annotated[
    Path | None, typer.Option("--artifacts", help="Bundle root (default: settings).")
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
    import pandas as pd

    from retail_forecast.monitoring.reference import window_features
    from retail_forecast.pipeline.build_dataset import build_dataset

    sales = build_dataset(data_dir, settings.data).sales
    days = window_days or settings.monitoring.drift_window_days
    end = sales["date"].max()
    return window_features(sales, start=end - pd.Timedelta(days=days - 1), end=end)


@monitor_app.command("drift")
def monitor_drift(
    data_dir: Annotated[str, typer.Option("--data-dir", help="Kaggle-layout data batch.")],
    reference: Annotated[
        Path | None, typer.Option("--reference", help="A reference.parquet (else the bundle's).")
    ] = None,
    artifacts: ArtifactsOpt = None,
    window_days: Annotated[
        int | None, typer.Option("--window-days", min=1, help="Last days of the batch.")
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Compare the last days of a data batch with the current bundle's reference profile."""
    from rich.table import Table

    from retail_forecast.monitoring.drift import check_drift

    settings = _settings(json_output=json_output)
    profile = _reference_profile(reference, artifacts or settings.artifacts_dir)
    current = _drift_window(data_dir, settings, window_days)
    report = check_drift(profile, current, config=settings.monitoring)
    if json_output:
        _print_json(report.to_dict())
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


@monitor_app.command("check")
def monitor_check(
    artifacts: ArtifactsOpt = None,
    metrics: Annotated[
        Path | None, typer.Option("--metrics", help="A metrics.json (else the bundle's).")
    ] = None,
    model_version: Annotated[
        str | None, typer.Option("--model-version", help="Version to rate (else current).")
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Rate recent accuracy vs the backtest; exit 1 on an alert (3: store unreadable)."""
    from retail_forecast.monitoring.performance import PredictionLog

    settings = _settings(json_output=json_output)
    cfg = settings.monitoring
    backtest_metrics, version = _backtest_metrics(metrics, artifacts or settings.artifacts_dir)
    status = PredictionLog.from_config(cfg).status(
        backtest_metrics,
        model_version=model_version or version,
        ratio=cfg.degradation_ratio,
        window_days=cfg.window_days,
        min_rows=cfg.min_accuracy_rows,
    )
    if json_output:
        _print_json(status.to_dict())
    else:
        style = "red" if status.alert else "green"
        console.print(f"[{style}]{status.status}[/{style}] {status.message}", highlight=False)
    if status.status == "unavailable":
        raise typer.Exit(EXIT_MONITOR_UNAVAILABLE)
    if status.alert:
        raise typer.Exit(EXIT_ERROR)


@monitor_app.command("ingest-actuals")
def monitor_ingest_actuals(
    file: Annotated[Path, typer.Option("--file", help="CSV: date,store_nbr,family,sales.")],
    json_output: JsonOpt = False,
) -> None:
    """Store observed sales for accuracy tracking (idempotent; corrections replace)."""
    import dataclasses

    import pandas as pd

    from retail_forecast.errors import MissingInputError
    from retail_forecast.monitoring.performance import PredictionLog

    settings = _settings(json_output=json_output)
    if not file.is_file():
        raise MissingInputError(f"actuals file {file} not found")
    result = PredictionLog.from_config(settings.monitoring).ingest_actuals(pd.read_csv(file))
    if json_output:
        _print_json(dataclasses.asdict(result))
    else:
        console.print(
            f"received {result.received:,}: inserted {result.inserted:,}, unchanged "
            f"{result.unchanged:,}, revised {result.revised:,}, rejected {result.rejected:,}"
        )
    if not result.ok:
        raise _fail(f"actuals not stored: {result.error}", EXIT_ERROR)


@monitor_app.command("report")
def monitor_report(
    out: Annotated[Path, typer.Option("--out", help="HTML file to write.")],
    data_dir: Annotated[
        str | None, typer.Option("--data-dir", help="Data batch for the drift section.")
    ] = None,
    reference: Annotated[Path | None, typer.Option("--reference")] = None,
    artifacts: ArtifactsOpt = None,
    metrics: Annotated[Path | None, typer.Option("--metrics")] = None,
    days: Annotated[int, typer.Option("--days", min=1, help="Target days to show.")] = 56,
) -> None:
    """Write a self-contained HTML report: drift, accuracy per family over time, worst series."""
    from retail_forecast.monitoring.drift import check_drift
    from retail_forecast.monitoring.performance import PredictionLog
    from retail_forecast.monitoring.report import write_report

    settings = _settings()
    root = artifacts or settings.artifacts_dir
    log = PredictionLog.from_config(settings.monitoring)
    drift = None
    if data_dir is not None:
        current = _drift_window(data_dir, settings, None)
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
    write_report(out, drift=drift, accuracy=accuracy, worst_series=worst, status=status)
    console.print(f"report written to {out}")


# --- aws ---------------------------------------------------------------------------------------

aws_app = typer.Typer(help="S3 storage (data + model.tar.gz) and SageMaker deploy.")
app.add_typer(aws_app, name="aws")
BucketOpt = Annotated[str | None, typer.Option("--bucket", help="S3 bucket (RF_AWS__BUCKET).")]
PrefixOpt = Annotated[str | None, typer.Option("--prefix", help="Key prefix (RF_AWS__PREFIX).")]


@aws_app.command("upload")
def aws_upload(
    bucket: BucketOpt = None,
    prefix: PrefixOpt = None,
    artifacts: Annotated[
        Path | None, typer.Option("--artifacts", help="Bundle dir or artifacts root (current).")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Processed or Kaggle-layout data dir.")
    ] = None,
) -> None:
    """Upload train.csv/test.csv and the current bundle as model.tar.gz, manifests last."""
    from retail_forecast.aws import commands

    settings = _settings(json_output=True)
    aws = commands.aws_settings(settings, bucket=bucket, prefix=prefix)
    _print_json(commands.upload(settings, aws=aws, artifacts=artifacts, data_dir=data_dir))


@aws_app.command("deploy")
def aws_deploy(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the exact requests as JSON; send nothing.")
    ] = False,
    bucket: BucketOpt = None,
    prefix: PrefixOpt = None,
    stamp: Annotated[
        str | None, typer.Option("--stamp", help="Name suffix (default: UTC yyyymmddthhmmss).")
    ] = None,
) -> None:
    """Create the SageMaker training jobs, models, endpoint configs and endpoints."""
    from retail_forecast.aws import commands

    settings = _settings(json_output=True)
    aws = commands.aws_settings(settings, bucket=bucket, prefix=prefix)
    _print_json(commands.deploy(settings, aws=aws, dry_run=dry_run, stamp=stamp))


# --- serve / forecast --------------------------------------------------------------------------

GRACEFUL_SHUTDOWN_S = 20


def _with_artifacts(settings: Settings, artifacts: Path | None) -> Settings:
    if artifacts is None:
        return settings
    return settings.model_copy(update={"artifacts_dir": artifacts})


@app.command("serve")
def serve(
    artifacts: Annotated[
        Path | None, typer.Option("--artifacts", help="Bundle root; serves its `current`.")
    ] = None,
    host: Annotated[str | None, typer.Option("--host", help="Default 127.0.0.1.")] = None,
    port: Annotated[int | None, typer.Option("--port", min=1, max=65535)] = None,
) -> None:
    """Serve the forecasting API (uvicorn); SIGTERM drains in-flight requests, then exits 0."""
    _serve(_with_artifacts(_settings(), artifacts), host, port)


@app.command("run")
def run(
    data_dir: Annotated[str | None, typer.Option("--data-dir", help=DEFAULT_DATA_HELP)] = None,
    host: Annotated[str | None, typer.Option("--host", help="Default 127.0.0.1.")] = None,
    port: Annotated[int | None, typer.Option("--port", min=1, max=65535)] = None,
) -> None:
    """Run the main job: (generate the built-in data) -> train -> serve on 127.0.0.1:8000."""
    settings = _settings()
    _train(data_dir, None, settings)
    console.print(
        f"serving on http://{host or settings.api.host}:{port or settings.api.port} "
        "(Ctrl+C stops); try: curl -s -X POST .../api/v1/predict "
        "-H 'Content-Type: application/json' -d \"$(retail-forecast example-request)\""
    )
    _serve(settings, host, port)


def _serve(settings: Settings, host: str | None, port: int | None) -> None:
    import signal

    import uvicorn

    from retail_forecast.app import create_app

    api = settings.api.model_copy(
        update={"host": host or settings.api.host, "port": port or settings.api.port}
    )
    settings = settings.model_copy(update={"api": api})
    config = uvicorn.Config(
        create_app(settings),
        host=api.host,
        port=api.port,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        # a backstop above the app's own shedding (which answers 503 with Retry-After first)
        limit_concurrency=2 * api.max_in_flight,
        log_config=None,
        access_log=False,
    )
    logger.info("serving %s on http://%s:%d", settings.artifacts_dir, api.host, api.port)
    # uvicorn drains on SIGTERM, then re-raises the signal to the handler that was installed
    # before it ran; a no-op one here makes a drained shutdown exit 0 (RELIABILITY promise 2).
    signal.signal(signal.SIGTERM, lambda _signum, _frame: None)
    uvicorn.Server(config).run()
    logger.info("server stopped")


@app.command("forecast")
def forecast(
    data_dir: Annotated[str, typer.Option("--data-dir", help="Kaggle-layout dir with test.csv.")],
    out: Annotated[Path, typer.Option("--out", help="Submission CSV to write (id,sales).")],
    artifacts: Annotated[
        Path | None, typer.Option("--artifacts", help="Bundle root; uses its `current`.")
    ] = None,
) -> None:
    """Forecast test.csv with the current bundle through the serving code; write id,sales."""
    from retail_forecast.pipeline.batch_forecast import forecast_test, write_submission

    settings = _with_artifacts(_settings(), artifacts)
    with err_console.status("forecasting"):
        result = forecast_test(data_dir, settings)
        path = write_submission(result.rows, out)
    console.print(
        f"{len(result.rows):,} forecasts from bundle {result.model_version} "
        f"(history to {result.history_end.date()}) written to {path}"
    )


@app.command("serve-sagemaker")
def serve_sagemaker(
    model_dir: Annotated[
        Path, typer.Option("--model-dir", help="Bundle dir or a root with `current`.")
    ] = Path("/opt/ml/model"),
    host: Annotated[str, typer.Option("--host", help="0.0.0.0 inside a container.")] = "0.0.0.0",  # noqa: S104
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8080,
) -> None:
    """Serve the SageMaker container contract (GET /ping, POST /invocations) with uvicorn."""
    import uvicorn

    from retail_forecast.inference.sagemaker_server import create_server_app

    _settings()  # configures logging
    logger.info("serving sagemaker contract model_dir=%s on %s:%d", model_dir, host, port)
    uvicorn.run(create_server_app(model_dir), host=host, port=port, log_config=None)


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
