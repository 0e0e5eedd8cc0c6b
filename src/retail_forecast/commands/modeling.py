"""Model commands: ``backtest``, ``train``, ``run``, ``example-request`` and ``forecast``."""

from __future__ import annotations

import json
import sys
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer

from retail_forecast.commands.common import (
    EXIT_ERROR,
    ConfigOption,
    console,
    err_console,
    fail,
    load_data_settings,
    load_settings,
    local_data_dir,
    print_json,
    with_artifacts,
)
from retail_forecast.commands.serving import serve_api
from retail_forecast.config import Settings

MODEL_NAMES = ("xgboost", "lstm", "hybrid")  # hybrid: held-out blend of xgboost and lstm
DEFAULT_DATA_HELP = "Kaggle-layout directory (default: settings; the built-in synthetic data)."
EngineOption = Annotated[
    str,
    typer.Option(
        "--engine",
        help="local (one process) or dask: XGBoost's features, fit and recursion on a Dask "
        "cluster (needs the dask extra); the LSTM stays in this process.",
    ),
]
SchedulerOption = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        help="With --engine dask: a running Dask scheduler (tcp://host:8786); default: a "
        "local cluster on 127.0.0.1, one worker process per core and the scheduler in its own.",
    ),
]


def _engine(engine: str, scheduler: str | None) -> Any:
    """Open the engine (``None`` for local); bad values fail before any data is read."""
    from retail_forecast.distributed.cluster import check_engine, open_engine
    from retail_forecast.errors import DataValidationError

    try:
        check_engine(engine, scheduler)
    except DataValidationError as exc:
        raise fail(str(exc), EXIT_ERROR) from None
    return open_engine(engine, scheduler)


def _factories_on(cluster: Any) -> Any:
    """Return the factories' swap for ``cluster`` (``None``: the local engine, no swap)."""
    if cluster is None:
        return None
    from retail_forecast.distributed.factories import dask_factories

    return partial(dask_factories, engine=cluster)


def backtest(
    data_dir: Annotated[str, typer.Option("--data-dir", help="Directory with Kaggle files.")],
    models: Annotated[
        str,
        typer.Option(
            "--models",
            help="Comma-separated models to evaluate: xgboost, lstm, hybrid "
            "(hybrid also runs xgboost and lstm).",
        ),
    ] = "xgboost",
    folds: Annotated[int | None, typer.Option("--folds", min=1, help="Rolling windows.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    config: ConfigOption = None,
    engine: EngineOption = "local",
    scheduler: SchedulerOption = None,
) -> None:
    """Rolling-origin backtest (refit per fold) of the models next to the four baselines.

    Also scores held-out quantiles (fold k calibrated on the other folds) of the hybrid when it
    runs, else of the best model: interval coverage and weighted quantile loss per fold.
    """
    from retail_forecast.data_processing.dataset import build_dataset
    from retail_forecast.training.backtest import run_backtest, summary_table
    from retail_forecast.training.factories import model_factories, side_by_side_models
    from retail_forecast.training.heldout_blend import add_hybrid
    from retail_forecast.training.quantile_scores import coverage_table, heldout_report

    names = _model_names(models)  # fail fast on unknown names, before reading any data
    engine_session = _engine(engine, scheduler)
    settings, local = load_data_settings(data_dir, config=config, json_output=json_output)
    with engine_session as cluster:  # the dask engine: each fold's XGBoost fit on the cluster
        # read while a local cluster starts (cluster.py)
        built = build_dataset(local, settings.data, horizon=settings.forecast.horizon)
        parallel = side_by_side_models(settings, names)
        made = model_factories(settings, built.holidays, side_by_side=bool(parallel))
        swap = _factories_on(cluster)
        factories = (swap(made) if swap else made).as_dict()
        result = run_backtest(
            built.sales,
            {name: factories[name] for name in names if name != "hybrid"},
            folds=folds or settings.backtest.folds,
            horizon=settings.forecast.horizon,
            step=settings.backtest.step,
            progress=not json_output,
            parallel=parallel,
        )
    if "hybrid" in names:
        result, _ = add_hybrid(result)
    quantiles = heldout_report(result, _quantile_column(result, names))
    if json_output:
        print_json({**result.to_dict(), "quantiles": quantiles})
    else:
        console.print(summary_table(result))
        console.print(coverage_table(quantiles))


def _quantile_column(result: Any, names: list[str]) -> str:
    """Return the column whose held-out quantiles a backtest reports.

    The hybrid when it ran (what ``train`` ships when the blend helps), else the asked-for
    model with the lowest mean RMSLE (never a baseline).
    """
    if "hybrid" in names:
        return "hybrid"
    means = result.mean_rmsle()
    return min(names, key=means.__getitem__)


def _model_names(models: str) -> list[str]:
    """Parse ``--models``; ``hybrid`` brings in the xgboost and lstm models it blends."""
    names = [m.strip() for m in models.split(",") if m.strip()]
    unknown = sorted(set(names) - set(MODEL_NAMES))
    if unknown or not names:
        raise fail(f"unknown models {unknown}; choose from {sorted(MODEL_NAMES)}", EXIT_ERROR)
    if "hybrid" in names:
        names = [n for n in ("xgboost", "lstm") if n not in names] + names
    return list(dict.fromkeys(names))


def _resolve_data_dir(data_dir: str | None, settings: Settings) -> str:
    """Return the data directory; generate the built-in default data when it is missing."""
    from retail_forecast.data_processing.synthetic import default_config, write_dataset
    from retail_forecast.data_processing.synthetic_profile import write_profile

    chosen = data_dir or settings.data.data_dir
    is_default = data_dir is None and chosen == "data/default"
    if is_default and not (Path(chosen) / "train.csv").exists():
        console.print(f"generating the built-in synthetic data in {chosen} ...")
        write_dataset(Path(chosen), default_config())
        write_profile(Path(chosen), default_config())  # its shock, left out of training
    return local_data_dir(chosen, settings)


def _train_settings(data_dir: str | None, config: str | None) -> tuple[Settings, str]:
    """Return the settings and the local data directory of train/run (default data.data_dir).

    The default data is generated first, so its profile (written beside it) is found.
    """
    settings = load_settings(config=config)
    chosen = _resolve_data_dir(data_dir, settings)
    if config is None:
        settings = load_settings(data_dir=chosen)
    return settings, chosen


def _train(chosen: str, out: Path | None, settings: Settings, engine: Any = None) -> Any:
    from retail_forecast.pipeline.data_import import import_dataset
    from retail_forecast.pipeline.fit import train_bundle
    from retail_forecast.training.backtest import summary_table
    from retail_forecast.training.quantile_scores import coverage_table

    built = import_dataset(chosen, settings.data, horizon=settings.forecast.horizon)
    console.print(
        f"data: {built.report.rows_kept:,} rows kept, {built.report.rows_quarantined:,} "
        f"quarantined, fingerprint {built.fingerprint[:12]}"
    )
    result = train_bundle(
        built,
        settings,
        out_dir=out or settings.artifacts_dir,
        progress=True,
        engine=_factories_on(engine),
    )
    console.print(summary_table(result.backtest))
    if result.quantile_report is not None:
        console.print(coverage_table(result.quantile_report))
    weights = result.weights
    console.print(
        f"blend: xgboost weight {weights.global_weight:.2f} "
        f"({len(weights.per_family)} families with their own weight)"
    )
    console.print(f"bundle [bold]{result.version}[/bold] written to {result.path} (current)")
    return result


def train(
    data_dir: Annotated[str | None, typer.Option("--data-dir", help=DEFAULT_DATA_HELP)] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Bundle root (default: artifacts/).")
    ] = None,
    config: ConfigOption = None,
    engine: EngineOption = "local",
    scheduler: SchedulerOption = None,
) -> None:
    """Ingest, validate, backtest, fit XGBoost + LSTM on all data, blend, write a bundle.

    With ``--engine dask`` a failure on the cluster (a worker lost mid-fit) ends the command
    with an error before any bundle is written.
    """
    engine_session = _engine(engine, scheduler)
    settings, chosen = _train_settings(data_dir, config)
    with engine_session as cluster:
        _train(chosen, out, settings, cluster)


def run(
    data_dir: Annotated[str | None, typer.Option("--data-dir", help=DEFAULT_DATA_HELP)] = None,
    host: Annotated[str | None, typer.Option("--host", help="Default 127.0.0.1.")] = None,
    port: Annotated[int | None, typer.Option("--port", min=1, max=65535)] = None,
    config: ConfigOption = None,
) -> None:
    """Run the main job: (generate the built-in data) -> train -> serve on 127.0.0.1:8000."""
    settings, chosen = _train_settings(data_dir, config)
    _train(chosen, None, settings)
    console.print(
        f"serving on http://{host or settings.api.host}:{port or settings.api.port} "
        "(Ctrl+C stops); try: curl -s -X POST .../api/v1/predict "
        "-H 'Content-Type: application/json' -d \"$(retail-forecast example-request)\""
    )
    serve_api(settings, host, port)


def example_request(
    artifacts: Annotated[
        str | None, typer.Option("--artifacts", help="Bundle root (default: artifacts/).")
    ] = None,
    store: Annotated[
        int | None, typer.Option("--store", help="store_nbr (default: first).")
    ] = None,
    family: Annotated[str | None, typer.Option("--family", help="family (default: first).")] = None,
) -> None:
    """Print a valid POST /api/v1/predict body: one series, the horizon after the bundle's data."""
    import datetime as dt

    from retail_forecast.artifacts import ModelBundle

    settings = load_settings(json_output=True)
    domain = ModelBundle.open_current(
        with_artifacts(settings, artifacts).artifacts_dir
    ).manifest.metadata["domain"]
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


def forecast(
    data_dir: Annotated[str, typer.Option("--data-dir", help="Kaggle-layout dir with test.csv.")],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="CSV to write: id,sales, then closed (0/1) when the data set declares closures "
            "(an open column or Closed holidays in the window).",
        ),
    ],
    artifacts: Annotated[
        str | None, typer.Option("--artifacts", help="Bundle root; uses its `current`.")
    ] = None,
    quantiles: Annotated[
        str | None,
        typer.Option(
            "--quantiles",
            help="Comma-separated levels in (0, 1), at most 9, e.g. 0.1,0.5,0.9: adds one "
            "column per level after id,sales, named q<level> (q0.1, q0.5, q0.9); 0 on closed "
            "days and zero-rule series. Without it the file is the point-only Kaggle submission.",
        ),
    ] = None,
    config: ConfigOption = None,
    engine: EngineOption = "local",
    scheduler: SchedulerOption = None,
) -> None:
    """Forecast test.csv with the current bundle through the serving code; write id,sales.

    A closed day (declared by the data set) is forecast 0 and flagged in a closed column.
    """
    from retail_forecast.pipeline.batch_forecast import forecast_test, write_submission

    levels = _parse_levels(quantiles)  # fail fast, before reading any data
    engine_session = _engine(engine, scheduler)
    settings, local = load_data_settings(data_dir, config=config)
    settings = with_artifacts(settings, artifacts)
    with engine_session as cluster, err_console.status("forecasting"):
        swap = None
        if cluster is not None:  # XGBoost's recursion on the cluster, a block of series a task
            from retail_forecast.distributed.dask_xgboost import DaskXGBForecaster

            swap = partial(DaskXGBForecaster.from_fitted, engine=cluster)
        result = forecast_test(local, settings, quantiles=levels, engine=swap)
        path = write_submission(result.rows, out, result.extra_columns)
    console.print(
        f"{len(result.rows):,} forecasts from bundle {result.model_version} "
        f"(history to {result.history_end.date()}) written to {path}"
    )


def _parse_levels(text: str | None) -> tuple[float, ...]:
    """Parse ``--quantiles`` into checked levels; a bad one fails naming ``quantiles[k]``."""
    from retail_forecast.errors import DataValidationError
    from retail_forecast.models.quantiles import check_levels

    if text is None:
        return ()
    values: list[float | str] = []
    for part in text.split(","):
        try:
            values.append(float(part))
        except ValueError:
            values.append(part.strip())  # check_levels names its position
    try:
        return check_levels(values)
    except DataValidationError as exc:
        raise fail(f"--quantiles: {exc}", EXIT_ERROR) from None
